/**
 * A real multi-node cluster on this machine: a head and workers as `rayline start` processes on
 * distinct ports, so that a test can kill -9 any of them. Logs are kept per node for failure reports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServeRestClient } from '../src/runtime/rest/client.ts';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { freePort } from './ports.ts';

const cli = fileURLToPath(new URL('../bin/rayline.js', import.meta.url));
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const TOKEN = 'cluster-test-token';

export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

export class NodeProcess {
  readonly name: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
  child: ChildProcess;
  log = '';

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.args = args;
    this.env = env;
    this.child = this.#spawn();
  }

  #spawn(): ChildProcess {
    const child = spawn(process.execPath, [cli, 'start', '--block', ...this.args], {
      cwd: repoRoot,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (d) => (this.log += d));
    return child;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the same node again (same flags and ports) after it died. */
  restart(): void {
    this.log += '\n--- restarted ---\n';
    this.child = this.#spawn();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    return exited;
  }
}

export interface WorkerSpec {
  id: string;
  cpus: number;
  gpus?: number;
  resources?: Record<string, number>;
}

export class TestCluster {
  head!: NodeProcess;
  readonly workers = new Map<string, NodeProcess>();
  readonly workerHttp = new Map<string, string>();
  readonly workerMetrics = new Map<string, string>();
  headHttp = '';
  rest!: ServeRestClient;
  clusterPort = 0;
  readonly stateDir = mkdtempSync(join(tmpdir(), 'rl-cluster-'));

  static async start(
    workers: WorkerSpec[],
    options: { headCpus?: number; headArgs?: string[] } = {},
  ): Promise<TestCluster> {
    const cluster = new TestCluster();
    const [cp, dp, hp, mp] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    cluster.clusterPort = cp;
    cluster.headHttp = `http://127.0.0.1:${hp}`;
    cluster.rest = new ServeRestClient(`http://127.0.0.1:${dp}`, TOKEN);
    const env = { ...process.env, RAYLINE_API_TOKEN: TOKEN, RAYLINE_NODE_TIMEOUT_S: '3' };
    cluster.head = new NodeProcess(
      'head',
      [
        '--head',
        '--port',
        String(cp),
        '--dashboard-port',
        String(dp),
        '--proxy-port',
        String(hp),
        '--metrics-port',
        String(mp),
        '--num-cpus',
        String(options.headCpus ?? 0),
        '--node-id',
        'head',
        '--state-dir',
        cluster.stateDir,
        ...(options.headArgs ?? []),
      ],
      env,
    );
    await waitFor(() => cluster.rest.getApplications().then(() => true), 30_000, 'the head to answer');
    await Promise.all(workers.map((w) => cluster.addWorker(w)));
    return cluster;
  }

  async addWorker(spec: WorkerSpec): Promise<NodeProcess> {
    const [hp, mp] = await Promise.all([freePort(), freePort()]);
    const args = [
      '--address',
      `127.0.0.1:${this.clusterPort}`,
      '--node-id',
      spec.id,
      '--num-cpus',
      String(spec.cpus),
      '--num-gpus',
      String(spec.gpus ?? 0),
      '--proxy-port',
      String(hp),
      '--metrics-port',
      String(mp),
    ];
    if (spec.resources) args.push('--resources', JSON.stringify(spec.resources));
    const worker = new NodeProcess(spec.id, args, { ...process.env, RAYLINE_API_TOKEN: TOKEN });
    this.workers.set(spec.id, worker);
    this.workerHttp.set(spec.id, `http://127.0.0.1:${hp}`);
    this.workerMetrics.set(spec.id, `http://127.0.0.1:${mp}`);
    await waitFor(
      async () => (await this.rest.getApplications()).proxies[spec.id] !== undefined,
      30_000,
      `worker ${spec.id} to join`,
    );
    return worker;
  }

  async deploy(config: ServeConfigInput): Promise<void> {
    await this.rest.putApplications(config);
  }

  async details() {
    return this.rest.getApplications();
  }

  /** Every node's log, for a failing assertion's message. */
  logs(): string {
    return [this.head, ...this.workers.values()]
      .map((n) => `=== ${n.name}\n${n.log.slice(-4000)}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.kill('SIGTERM')));
    await this.head.kill('SIGTERM');
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
