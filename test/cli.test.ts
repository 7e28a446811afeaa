/** The `rayline` command as a user runs it: real processes, real ports. */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const sources = fileURLToPath(new URL('../src/index.ts', import.meta.url));
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
    // No absolute working_dir: the file works wherever the code sits beside it (an image, a RayService).
    assert.deepEqual(app.runtime_env, {});
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

    const bareModule = await rayline('serve', 'run', 'behaviors.ts');
    assert.equal(bareModule.code, 1);
    assert.equal(
      bareModule.stderr,
      "rayline: 'behaviors.ts' is a module, not a config file: name the application it exports, e.g. 'behaviors.ts:app' (module:export) [RL_CONFIG_INVALID]\n",
    );

    // No terminal to ask in: nothing is deleted without --yes (the REST API is not even called).
    const shutdown = await rayline('serve', 'shutdown', '--address', 'http://127.0.0.1:9');
    assert.equal(shutdown.code, 1);
    assert.match(shutdown.stderr, /^rayline: .*pass --yes \[RL_BAD_REQUEST\]\n$/);

    const typo = await rayline('serve', 'status', '--nme', 'x');
    assert.equal(typo.code, 1);
    assert.equal(typo.stderr, "rayline: unknown option '--nme' (Did you mean --name?) [RL_BAD_REQUEST]\n");

    const noHead = await rayline('start');
    assert.equal(noHead.code, 1);
    assert.match(noHead.stderr, /^rayline: say --head/);

    const unreachable = await rayline('serve', 'status', '--address', 'http://127.0.0.1:9');
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      /^rayline: cannot reach the Rayline REST API at http:\/\/127\.0\.0\.1:9.* \(--address, env RAYLINE_ADDRESS\) \[RL_CONNECTION\]\n$/,
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

      const one = await rayline('serve', 'status', '--name', 'hello', '--address', address);
      assert.match(one.stdout, /^name: hello\nstatus: RUNNING\n/);
      const unknown = await rayline('serve', 'status', '--name', 'nope', '--address', address);
      assert.equal(unknown.code, 1);
      assert.equal(
        unknown.stderr,
        `rayline: no application 'nope' on ${address} (--name); it has 'hello' [RL_NOT_FOUND]\n`,
      );

      // A second serve run beside this head names every port it cannot have, and starts nothing.
      const clash = await rayline(
        'serve',
        'run',
        'cli-config.yaml',
        '--port',
        String(http),
        '--dashboard-port',
        String(dashboard),
        '--metrics-port',
        String(metrics),
      );
      assert.equal(clash.code, 1);
      assert.equal(clash.stderr.split('\n').length, 2, clash.stderr);
      for (const flag of ['--port or http_options.port', '--dashboard-port', '--metrics-port'])
        assert.ok(clash.stderr.includes(`(${flag}) is in use`), clash.stderr);
      assert.match(
        clash.stderr,
        /--address http:\/\/127\.0\.0\.1:\d+\), or choose free ports \[RL_PORT_IN_USE\]\n$/,
      );

      // serve run --address --reload: deployed beside 'hello', re-deployed when its file changes.
      const project = mkdtempSync(join(tmpdir(), 'rayline-reload-'));
      const version = (v: string) =>
        writeFileSync(
          join(project, 'app.ts'),
          `import { deployment } from '${sources}';\nclass Version {\n  __call__() {\n    return '${v}';\n  }\n}\nexport const app = deployment(Version).bind();\n`,
        );
      version('v1');
      const reloading = spawn(
        process.execPath,
        [
          cli,
          'serve',
          'run',
          'app.ts:app',
          '--name',
          'v',
          '--route-prefix',
          '/v',
          '--address',
          address,
          '--reload',
        ],
        { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let reloadOutput = '';
      reloading.stdout!.on('data', (d) => (reloadOutput += d));
      reloading.stderr!.on('data', (d) => (reloadOutput += d));
      const body = (path: string) =>
        fetch(`http://127.0.0.1:${http}${path}`).then(
          (r) => (r.ok ? r.text() : undefined),
          () => undefined,
        );
      try {
        await waitFor(
          async () => (await body('/v')) === 'v1',
          60_000,
          () => `v1 to answer\n${reloadOutput}`,
        );
        version('v2');
        await waitFor(
          async () => (await body('/v')) === 'v2',
          60_000,
          () => `v2 after the change\n${reloadOutput}`,
        );
        assert.match(reloadOutput, /app\.ts changed: re-deploying\./);
        const left = new Promise<number | null>((resolve) => reloading.once('exit', (code) => resolve(code)));
        reloading.kill('SIGINT');
        assert.equal(await left, 0, reloadOutput);
        assert.match((await body('/hello/x')) ?? '', /Hello from Rayline/);
      } finally {
        if (reloading.exitCode === null) reloading.kill('SIGKILL');
        rmSync(project, { recursive: true, force: true });
      }

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

  test('serve run exits 1 with one line when its applications fail to deploy, unless --keep-running', async () => {
    const ports = (await freePorts(3)).map(String);
    const portFlags = ['--port', ports[0]!, '--dashboard-port', ports[1]!, '--metrics-port', ports[2]!];
    const failed = await rayline('serve', 'run', 'cli-failing.yaml', ...portFlags);
    assert.equal(failed.code, 1);
    assert.equal(
      failed.stderr,
      "rayline: application 'broken': module 'behaviors.ts' has no export 'nope' (import_path 'behaviors.ts:nope'); exports: app, broken, slowStart, withArgs; fix the code or config and run again, or pass --keep-running to stay up and re-deploy [RL_DEPLOY_FAILED]\n",
    );
    // encoding: TEXT is text even though stdout is a pipe.
    assert.match(failed.stdout, /application failed/);
    assert.doesNotMatch(failed.stdout, /^\{/m);

    const kept = spawn(
      process.execPath,
      [cli, 'serve', 'run', 'cli-failing.yaml', '--keep-running', ...portFlags],
      {
        cwd: fixtures,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    kept.stdout!.on('data', (d) => (output += d));
    kept.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => kept.once('exit', (code) => resolve(code)));
    try {
      await waitFor(
        () => /application failed/.test(output),
        60_000,
        () => `the failure to be logged\n${output}`,
      );
      // Still up after the failure: the REST API answers, with the application's final status.
      const details = (await (
        await fetch(`http://127.0.0.1:${ports[1]}/api/serve/applications/`)
      ).json()) as ServeInstanceDetails;
      assert.equal(details.applications.broken?.status, 'DEPLOY_FAILED');
      kept.kill('SIGINT');
      assert.equal(await exited, 0, output);
    } finally {
      if (kept.exitCode === null) kept.kill('SIGKILL');
    }
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
