/**
 * The command the operator writes into a head pod starts a working head: the pod builder's exact
 * arguments and environment, run as a process (ports moved off the defaults so tests can run beside
 * anything).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildHeadPod } from '../src/operator/raycluster/pod-builder.ts';
import { rayClusterSpecSchema } from '../src/schema/raycluster.ts';
import { waitFor } from './harness.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

test('a head pod built for an autoscaled GPU cluster runs `rayline start` to a head that asks for its token', async () => {
  const spec = rayClusterSpecSchema.parse({
    enableInTreeAutoscaling: true,
    headGroupSpec: {
      template: {
        spec: { containers: [{ name: 'head', resources: { limits: { cpu: '2', memory: '4Gi' } } }] },
      },
    },
  });
  const pod = buildHeadPod({ name: 'demo', namespace: 'ml', uid: 'u' }, spec);
  const args = pod.spec?.containers[0]?.args ?? [];
  assert.ok(args.includes('--autoscaling-provider=kubernetes') && args.includes('--num-cpus=2'));
  const [dashboard, proxy, metrics, cluster] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const token = 'pod-command-test-token';
  const child = spawn(
    process.execPath,
    [
      cli,
      ...args,
      `--dashboard-port=${dashboard}`,
      `--proxy-port=${proxy}`,
      `--metrics-port=${metrics}`,
      `--port=${cluster}`,
    ],
    {
      env: {
        ...process.env,
        RAYLINE_API_TOKEN: token,
        RAYLINE_STATE_DIR: mkdtempSync(join(tmpdir(), 'rayline-pod-')),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  try {
    const rest = `http://127.0.0.1:${dashboard}`;
    await waitFor(
      () =>
        fetch(`${rest}/-/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      60_000,
      () => `the head to answer /-/healthz\n${output}`,
    );
    const denied = await fetch(`${rest}/api/serve/applications/`);
    assert.equal(denied.status, 401);
    const allowed = await fetch(`${rest}/api/serve/applications/`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(allowed.status, 200);
    assert.deepEqual(((await allowed.json()) as { applications: object }).applications, {});
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
});
