/**
 * The command the operator writes into a head pod starts a working head: the pod builder's exact
 * arguments and environment, run as a process (ports moved off the defaults so tests can run beside
 * anything).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildHeadPod, buildWorkerPod } from '../src/operator/raycluster/pod-builder.ts';
import { rayClusterSpecSchema } from '../src/schema/raycluster.ts';
import { waitFor } from './harness.ts';
import { freePort } from './ports.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

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

/** A container's environment as the kubelet would resolve it, for the fields the builder uses. */
function resolvedEnv(
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[],
  values: { podName: string; namespace: string; token: string },
): Record<string, string> {
  const fields: Record<string, string> = {
    'metadata.name': values.podName,
    'metadata.namespace': values.namespace,
    'status.podIP': '127.0.0.1',
  };
  return Object.fromEntries(
    env.map((e) => [
      e.name,
      e.value ?? (e.valueFrom?.fieldRef ? fields[e.valueFrom.fieldRef.fieldPath] : values.token),
    ]),
  );
}

test("a worker pod's command joins the head pod's cluster under the pod's name and runs its GPU replicas", async () => {
  const spec = rayClusterSpecSchema.parse({
    headGroupSpec: {
      rayStartParams: { 'num-cpus': '0' },
      template: {
        spec: { containers: [{ name: 'head', resources: { limits: { cpu: '2', memory: '4Gi' } } }] },
      },
    },
    workerGroupSpecs: [
      {
        groupName: 'gpu',
        replicas: 1,
        template: {
          spec: {
            containers: [
              { name: 'w', resources: { limits: { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' } } },
            ],
          },
        },
      },
    ],
  });
  const ref = { name: 'demo', namespace: 'ml', uid: 'u' };
  const token = 'pod-worker-test-token';
  const [dashboard, proxy, metrics, cluster, workerProxy, workerMetrics] = await Promise.all(
    Array.from({ length: 6 }, freePort),
  );
  const stateDir = mkdtempSync(join(tmpdir(), 'rayline-pod-'));
  const run = (args: string[], env: Record<string, string>) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env, RAYLINE_STATE_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { text: '' };
    child.stdout.on('data', (d) => (out.text += d));
    child.stderr.on('data', (d) => (out.text += d));
    return { child, out };
  };
  const headPod = buildHeadPod(ref, spec);
  const head = run(
    [
      ...(headPod.spec?.containers[0]?.args ?? []),
      `--dashboard-port=${dashboard}`,
      `--proxy-port=${proxy}`,
      `--metrics-port=${metrics}`,
      `--port=${cluster}`,
    ],
    resolvedEnv(headPod.spec!.containers[0].env as never, { podName: 'demo-head-x', namespace: 'ml', token }),
  );
  const workerPod = buildWorkerPod(ref, spec.workerGroupSpecs![0]);
  const podName = 'demo-gpu-worker-abcde';
  // The pod's own arguments, with the head service's DNS name standing in as loopback.
  const workerArgs = (workerPod.spec?.containers[0]?.args ?? []).map((a) =>
    a.startsWith('--address=') ? `--address=127.0.0.1:${cluster}` : a,
  );
  assert.ok(workerArgs.includes('--num-gpus=1') && workerArgs.includes('--block'), workerArgs.join(' '));
  const worker = run(
    [...workerArgs, `--proxy-port=${workerProxy}`, `--metrics-port=${workerMetrics}`],
    resolvedEnv(workerPod.spec!.containers[0].env as never, { podName, namespace: 'ml', token }),
  );
  const rest = `http://127.0.0.1:${dashboard}/api/serve/applications/`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  try {
    await waitFor(
      async () => {
        const details = await fetch(rest, { headers }).then(
          (r) => (r.ok ? r.json() : {}),
          () => ({}),
        );
        return (details as { proxies?: Record<string, unknown> }).proxies?.[podName] !== undefined;
      },
      60_000,
      () => `the worker to join as ${podName}\n${head.out.text}\n${worker.out.text}`,
    );
    const put = await fetch(rest, {
      method: 'PUT',
      headers,
      body: JSON.stringify({
        applications: [
          {
            name: 'gpu',
            route_prefix: '/gpu',
            import_path: 'test/fixtures/cluster-app.ts:app',
            runtime_env: { working_dir: fileURLToPath(new URL('..', import.meta.url)) },
            deployments: [{ name: 'Where', ray_actor_options: { num_gpus: 1 } }],
          },
        ],
      }),
    });
    assert.equal(put.status, 200);
    const answer = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${workerProxy}/gpu`).catch(() => undefined);
        return res?.ok ? ((await res.json()) as { node: string; gpus: string }) : undefined;
      },
      60_000,
      () => `the GPU replica to answer through the worker's proxy\n${head.out.text}\n${worker.out.text}`,
    );
    assert.deepEqual(answer.node, podName);
    assert.equal(answer.gpus, '0');
  } finally {
    for (const { child } of [worker, head]) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
  }
});
