/** The `rayline` command as a user runs it: real processes, real ports. */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import type { ServeInstanceDetails } from '../src/runtime/controller/status.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';
import { waitFor } from './harness.ts';
import { freePorts } from './ports.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

const stateDir = mkdtempSync(join(tmpdir(), 'rayline-cli-test-'));

/** Whether the URL answers 2xx now (false while nothing listens). */
const answers = (url: string) =>
  fetch(url).then(
    (r) => r.ok,
    () => false,
  );

function rayline(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, RAYLINE_STATE_DIR: stateDir };
    execFile(process.execPath, [cli, ...args], { cwd: fixtures, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('rayline CLI', () => {
  test('--help on every command', async () => {
    const top = await rayline('--help');
    assert.equal(top.code, 0);
    assert.match(top.stdout, /serve/);
    assert.match(top.stdout, /start/);
    for (const command of ['run', 'deploy', 'status', 'config', 'shutdown', 'build']) {
      const help = await rayline('serve', command, '--help');
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`Usage: rayline serve ${command}`));
    }
    for (const command of ['start', 'stop']) {
      const help = await rayline(command, '--help');
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`Usage: rayline ${command}`));
    }
  });

  test('serve build writes a valid config with each deployment and its options from code', async () => {
    const built = await rayline('serve', 'build', 'behaviors.ts:app');
    assert.equal(built.code, 0, built.stderr);
    const config = parseServeConfig(yaml.load(built.stdout));
    assert.ok(config.ok, JSON.stringify(config));
    const [app] = config.value.applications;
    assert.equal(app.import_path, 'behaviors.ts:app');
    assert.deepEqual(
      app.deployments.map((d) => [d.name, d.max_ongoing_requests]),
      [
        ['Behaviors', 100],
        ['Worker', 2],
      ],
    );
  });

  test('failures print one clear line and exit non-zero', async () => {
    const missing = await rayline('serve', 'run', 'nope.yaml');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.match(missing.stderr, /^rayline: cannot read config file 'nope.yaml'/);

    const invalid = await rayline('serve', 'run', 'cli-invalid.yaml');
    assert.equal(invalid.code, 1);
    assert.equal(invalid.stderr.trim().split('\n').length, 1);
    assert.match(invalid.stderr, /applications\[0\]\.deployments\[0\]\.max_ongoing_requests/);

    const noHead = await rayline('start');
    assert.equal(noHead.code, 1);
    assert.match(noHead.stderr, /^rayline: say --head/);

    const unreachable = await rayline('serve', 'status', '--address', 'http://127.0.0.1:9');
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      /^rayline: cannot reach the Rayline REST API at http:\/\/127\.0\.0\.1:9/,
    );
  });

  describe('serve run, status, config, deploy, shutdown', () => {
    let [http, dashboard, metrics] = [0, 0, 0];
    let address = '';
    let run: ChildProcess | undefined;

    before(async () => {
      [http, dashboard, metrics] = await freePorts(3);
      address = `http://127.0.0.1:${dashboard}`;
    });

    after(() => {
      if (run?.exitCode === null) run.kill('SIGKILL');
    });

    test('a foreground head serves, reports, and stops cleanly on SIGINT', async () => {
      run = spawn(
        process.execPath,
        [
          cli,
          'serve',
          'run',
          'cli-config.yaml',
          '--port',
          String(http),
          '--dashboard-port',
          String(dashboard),
          '--metrics-port',
          String(metrics),
        ],
        {
          cwd: fixtures,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      run.stdout!.on('data', (d) => (output += d));
      run.stderr!.on('data', (d) => (output += d));
      await waitFor(
        () => answers(`http://127.0.0.1:${http}/hello/x`),
        60_000,
        () => `the hello app to answer\n${output}`,
      );
      const status = await rayline('serve', 'status', '--address', address);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /hello:\n\s+status: RUNNING/);
      assert.match(status.stdout, /HelloModel:\n\s+status: HEALTHY/);
      assert.match(status.stdout, /RUNNING: 2/);

      const config = await rayline('serve', 'config', '--address', address);
      assert.match(config.stdout, /import_path: .*examples\/hello\/app\.ts:app/);

      // Deploying the same file through the REST API restarts nothing (same resolved directory).
      const replicaIds = async () =>
        (
          (await (await fetch(`${address}/api/serve/applications/`)).json()) as ServeInstanceDetails
        ).applications.hello.deployments.HelloModel.replicas
          .map((r) => r.replica_id)
          .sort();
      const before = await replicaIds();
      const deploy = await rayline('serve', 'deploy', 'cli-config.yaml', '--address', address);
      assert.equal(deploy.code, 0, deploy.stderr);
      assert.match(deploy.stdout, /Sent deploy request for cli-config.yaml/);
      // The deployed config is the new one (its runtime_env as sent) and, the build done, RUNNING:
      // had the version changed, new replicas would have replaced the old ones by then.
      await waitFor(
        async () => {
          const app = (
            (await (await fetch(`${address}/api/serve/applications/`)).json()) as ServeInstanceDetails
          ).applications.hello;
          const runtimeEnv = (app.deployed_app_config?.runtime_env ?? {}) as Record<string, unknown>;
          return runtimeEnv.working_dir === undefined && app.status === 'RUNNING';
        },
        30_000,
        'the re-deploy to be built and applied',
      );
      assert.deepEqual(await replicaIds(), before);

      const shutdown = await rayline('serve', 'shutdown', '--yes', '--address', address);
      assert.equal(shutdown.code, 0);
      await waitFor(
        () =>
          fetch(`http://127.0.0.1:${http}/hello/x`).then(
            (r) => r.status === 404,
            () => false,
          ),
        30_000,
        'the app to be removed',
      );

      const exited = new Promise<number | null>((resolve) => run!.once('exit', (code) => resolve(code)));
      run.kill('SIGINT');
      assert.equal(await exited, 0);
    });
  });

  test('start runs a head and a worker in the background; serve deploy reaches them; stop drains both', async () => {
    const [http, dashboard, metrics, cluster, workerHttp, workerMetrics] = await freePorts(6);
    const address = `http://127.0.0.1:${dashboard}`;
    const started = await rayline(
      'start',
      '--head',
      '--proxy-port',
      String(http),
      '--dashboard-port',
      String(dashboard),
      '--metrics-port',
      String(metrics),
      '--port',
      String(cluster),
    );
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /Rayline head started \(pid \d+\)/);
    const pid = Number(readFileSync(join(stateDir, 'head.pid'), 'utf8'));
    const workerPids: number[] = [];
    try {
      const again = await rayline('start', '--head', '--proxy-port', String(http));
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`a head is already running \\(pid ${pid}\\)`));

      assert.equal((await rayline('serve', 'deploy', 'cli-config.yaml', '--address', address)).code, 0);
      await waitFor(() => answers(`http://127.0.0.1:${http}/hello/x`), 60_000, 'the deployed app to answer');
      const worker = await rayline(
        'start',
        '--address',
        `127.0.0.1:${cluster}`,
        '--proxy-port',
        String(workerHttp),
        '--metrics-port',
        String(workerMetrics),
      );
      assert.equal(worker.code, 0, worker.stderr);
      const workerPid = Number(/Rayline worker started \(pid (\d+)\)/.exec(worker.stdout)?.[1]);
      workerPids.push(workerPid);
      await waitFor(
        () => answers(`http://127.0.0.1:${workerHttp}/hello/x`),
        60_000,
        "the worker's proxy to answer",
      );
      const stopped = await rayline('stop');
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stdout, new RegExp(`Stopped Rayline head \\(pid ${pid}\\)`));
      assert.match(stopped.stdout, new RegExp(`Stopped Rayline worker \\(pid ${workerPid}\\)`));
      assert.throws(() => process.kill(pid, 0), /ESRCH/);
      assert.throws(() => process.kill(workerPid, 0), /ESRCH/);
      assert.equal((await rayline('stop')).stdout.trim(), 'No running Rayline node found.');
    } finally {
      for (const p of [pid, ...workerPids]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
