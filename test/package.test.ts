/**
 * The published package as a user gets it: `npm pack`, installed into a fresh project, serving a
 * TypeScript application that imports `rayline`, with Rayline itself running from its compiled files.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from './harness.ts';
import { freePorts } from './ports.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rayline-package-'));

after(() => rmSync(dir, { recursive: true, force: true }));

test('npm pack, install into a new project, serve a TypeScript app from the compiled package', async () => {
  await run('npm', ['pack', '--pack-destination', dir], { cwd: root });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  const project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user-app', type: 'module', dependencies: { rayline: `file:../${tarball}` } }),
  );
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project });
  writeFileSync(
    join(project, 'app.ts'),
    [
      "import { deployment, type ServeRequest } from 'rayline';",
      '@deployment({ numReplicas: 1 })',
      'class Hi {',
      '  __call__(request: ServeRequest) {',
      '    return { hi: request.path };',
      '  }',
      '}',
      'export const app = deployment(Hi).bind();',
    ].join('\n'),
  );
  const [httpPort, dashboardPort, metricsPort] = await freePorts(3);
  const bin = join(project, 'node_modules', 'rayline', 'bin', 'rayline.js');
  const head = spawn(
    process.execPath,
    [
      bin,
      'serve',
      'run',
      'app.ts:app',
      '--port',
      String(httpPort),
      '--dashboard-port',
      String(dashboardPort),
      '--metrics-port',
      String(metricsPort),
    ],
    { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  head.stdout!.on('data', (d) => (output += d));
  head.stderr!.on('data', (d) => (output += d));
  try {
    const body = await waitFor(
      () =>
        fetch(`http://127.0.0.1:${httpPort}/x`).then(
          (r) => (r.ok ? r.json() : undefined),
          () => undefined,
        ),
      60_000,
      () => `the installed package to serve\n${output}`,
    );
    assert.deepEqual(body, { hi: '/x' });
    // The package ships no TypeScript sources: Rayline ran from its compiled files.
    assert.equal(existsSync(join(project, 'node_modules', 'rayline', 'src')), false);
    assert.equal(
      existsSync(join(project, 'node_modules', 'rayline', 'dist', 'runtime', 'replica', 'main.js')),
      true,
    );
    const exited = new Promise<number | null>((resolve) => head.once('exit', resolve));
    head.kill('SIGINT');
    assert.equal(await exited, 0);
  } finally {
    if (head.exitCode === null) head.kill('SIGKILL');
  }
});
