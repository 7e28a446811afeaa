/** `rayline start --head` (a long-running local head, in the background unless --block) and `rayline stop`. */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { RaylineError } from '../errors.ts';
import { runHeadInForeground } from './head-process.ts';
import { parseNodeFlags } from './node-flags.ts';
import { runWorkerInForeground } from './worker-process.ts';

const stateDir = () => process.env.RAYLINE_STATE_DIR ?? join(tmpdir(), `rayline-${userInfo().uid}`);
const pidFile = () => join(stateDir(), 'head.pid');
const cliEntry = fileURLToPath(new URL('../../bin/rayline.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function runningHead(): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(), 'utf8'));
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new RaylineError('RL_TIMEOUT', `${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function registerStartStop(program: Command): void {
  program
    .command('start')
    .description('Start a Rayline node: the head (--head) or a worker joining it (--address)')
    .option('--head', 'start the head node')
    .option('--address <host:port>', 'join the cluster of the head at this address (its --port)')
    .option('--node-id <id>', "this node's name (default: $RAYLINE_POD_NAME, else host-pid)")
    .option(
      '--node-ip-address <ip>',
      'address other nodes reach this one at (default: $RAYLINE_POD_IP, else 127.0.0.1)',
    )
    .option(
      '--state-dir <dir>',
      'head: keep the applied config and known nodes here to recover after a restart',
    )
    .option(
      '--autoscaling-config <file>',
      'head: run the cluster autoscaler with local worker processes of these groups',
    )
    .option('--port <port>', 'cluster RPC port', Number, 6379)
    .option('--dashboard-host <host>', 'REST API host (loopback unless a token is set)')
    .option('--dashboard-port <port>', 'REST API port', Number, 8265)
    .option('--proxy-port <port>', 'HTTP proxy port', Number, 8000)
    .option('--metrics-port <port>', 'Prometheus metrics port', Number, 8080)
    .option('--token <token>', 'bearer token for the REST API (env RAYLINE_API_TOKEN)')
    .option(
      '--allow-unauthenticated',
      'head without a token: bind the REST API and cluster port beyond loopback anyway (anyone who reaches them can deploy code)',
    )
    .option('--num-cpus <n>', 'CPUs this node offers to replicas')
    .option('--num-gpus <n>', 'GPUs this node offers to replicas')
    .option('--memory <bytes>', 'memory this node offers to replicas, in bytes')
    .option('--resources <json>', 'custom resources, e.g. \'{"TPU": 4}\'')
    .option('--labels <json>', 'node labels, e.g. \'{"zone": "a"}\'')
    .option('--autoscaling-provider <name>', "run the cluster autoscaler with this provider ('kubernetes')")
    .option('--block', 'stay in the foreground')
    .action(async (options) => {
      // Checked first, so a bad flag fails before anything starts.
      const node = parseNodeFlags(options);
      if (Boolean(options.head) === Boolean(options.address)) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          options.head
            ? '--head and --address exclude each other: a head starts a cluster, --address joins one'
            : 'say --head to start a head node, or --address HEAD:PORT to join one as a worker',
        );
      }
      if (options.autoscalingConfig && !options.head) {
        throw new RaylineError('RL_BAD_REQUEST', '--autoscaling-config is a head flag');
      }
      const token = options.token ?? process.env.RAYLINE_API_TOKEN;
      const nodeId = options.nodeId ?? process.env.RAYLINE_POD_NAME;
      const ip = options.nodeIpAddress ?? process.env.RAYLINE_POD_IP ?? '127.0.0.1';
      if (options.address && options.block) {
        await runWorkerInForeground({
          headAddress: options.address,
          token,
          nodeId,
          ip,
          node,
          proxyPort: options.proxyPort,
          metricsPort: options.metricsPort,
        });
        return;
      }
      if (options.block) {
        await runHeadInForeground({
          http: { port: options.proxyPort },
          dashboardHost: options.dashboardHost,
          dashboardPort: options.dashboardPort,
          metricsPort: options.metricsPort,
          token,
          allowUnauthenticated: Boolean(options.allowUnauthenticated),
          node,
          nodeId,
          cluster: { host: token ? '0.0.0.0' : ip, port: options.port, ip },
          stateDir: options.stateDir,
          autoscalingConfig: options.autoscalingConfig,
        });
        return;
      }
      if (options.address) {
        const { pid, logFile } = startInBackground('worker');
        await waitFor(
          () => {
            if (!alive(pid))
              throw new RaylineError('RL_INTERNAL', `the worker exited during start; see ${logFile}`);
            return readFileSync(logFile, 'utf8').includes('"joined the cluster"');
          },
          60_000,
          'worker start',
        );
        console.log(`Rayline worker started (pid ${pid}), joined ${options.address}.`);
        console.log(`  HTTP:      http://127.0.0.1:${options.proxyPort}`);
        console.log(`  Logs:      ${logFile}`);
        return;
      }
      const existing = runningHead();
      if (existing)
        throw new RaylineError(
          'RL_BAD_REQUEST',
          `a head is already running (pid ${existing}); run 'rayline stop' first`,
        );
      const { pid, logFile } = startInBackground('head');
      const host =
        options.dashboardHost && options.dashboardHost !== '0.0.0.0' ? options.dashboardHost : '127.0.0.1';
      const rest = `http://${host}:${options.dashboardPort}`;
      await waitFor(
        async () => {
          if (!alive(pid))
            throw new RaylineError('RL_INTERNAL', `the head exited during start; see ${logFile}`);
          return fetch(`${rest}/-/healthz`).then(
            (r) => r.ok,
            () => false,
          );
        },
        60_000,
        'head start',
      );
      console.log(`Rayline head started (pid ${pid}).`);
      console.log(`  REST API:  ${rest}    (rayline serve deploy <config.yaml>)`);
      console.log(`  HTTP:      http://127.0.0.1:${options.proxyPort}`);
      console.log(`  Metrics:   http://127.0.0.1:${options.metricsPort}/metrics`);
      console.log(`  Logs:      ${logFile}`);
    });

  program
    .command('stop')
    .description('Stop the nodes started by `rayline start` on this machine, draining their replicas')
    .option('--timeout <seconds>', 'seconds to wait before killing them', Number, 60)
    .action(async (options) => {
      const nodes = runningNodes();
      if (nodes.length === 0) {
        console.log('No running Rayline node found.');
        return;
      }
      await Promise.all(
        nodes.map(async ({ name, pid }) => {
          process.kill(pid, 'SIGTERM');
          try {
            await waitFor(() => !alive(pid), options.timeout * 1000, `${name} stop`);
          } catch {
            process.kill(pid, 'SIGKILL');
          }
          rmSync(join(stateDir(), `${name}.pid`), { force: true });
          console.log(`Stopped Rayline ${name.replace(/-\d+$/, '')} (pid ${pid}).`);
        }),
      );
    });
}

/**
 * Runs this same command with --block as a detached process logging to the state directory; a
 * head's pid file is `head.pid`, a worker's `worker-<pid>.pid` (several workers may share a machine).
 */
function startInBackground(kind: 'head' | 'worker'): { pid: number; logFile: string } {
  mkdirSync(stateDir(), { recursive: true });
  const logFile = join(stateDir(), kind === 'head' ? 'head.log' : `worker-${Date.now()}.log`);
  const out = openSync(logFile, 'a');
  const args = process.argv.slice(2).filter((a) => a !== '--block');
  const child = spawn(process.execPath, [cliEntry, ...args, '--block'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  child.unref();
  const pid = child.pid!;
  writeFileSync(join(stateDir(), kind === 'head' ? 'head.pid' : `worker-${pid}.pid`), String(pid));
  return { pid, logFile };
}

/** Nodes started in the background whose processes still run; stale pid files are removed. */
function runningNodes(): { name: string; pid: number }[] {
  let files: string[];
  try {
    files = readdirSync(stateDir()).filter((f) => /^(head|worker-\d+)\.pid$/.test(f));
  } catch {
    return [];
  }
  const nodes: { name: string; pid: number }[] = [];
  for (const file of files) {
    const pid = Number(readFileSync(join(stateDir(), file), 'utf8'));
    if (pid > 0 && alive(pid)) nodes.push({ name: file.replace(/\.pid$/, ''), pid });
    else rmSync(join(stateDir(), file), { force: true });
  }
  return nodes;
}
