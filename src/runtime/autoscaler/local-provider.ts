/**
 * The `local` provider: worker groups from the `--autoscaling-config` file, each worker a
 * `rayline start --address <head> --block` child process of the head on this machine. It plays both
 * the provider and the operator of the Kubernetes case: apply() records the target of each group and
 * converges on it, and reconcile() (once per autoscaler round) replaces workers that exited on their
 * own, the way the operator recreates a pod, with a backoff for workers that keep failing.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../observability/logger.ts';
import { childExecArgv } from '../node/child-entry.ts';
import {
  type AutoscalingConfig,
  clusterShapeOf,
  initialReplicas,
  type WorkerGroupConfig,
} from './autoscaling-config.ts';
import type { ClusterShape, NodeProvider, ProviderWorker, ScaleDecision } from './types.ts';

// The same depth under src/ and dist/, so this resolves in both.
const cliEntry = fileURLToPath(new URL('../../../bin/rayline.js', import.meta.url));

/** Starts one worker process; the provider owns it from then on (stops it by pid, watches it exit). */
export type SpawnWorker = (group: WorkerGroupConfig, workerId: string) => ChildProcess;

export interface WorkerCommandOptions {
  /** The head's cluster address (`host:port`) the worker registers with. */
  headAddress: string;
  /** The cluster token, passed as RAYLINE_API_TOKEN. */
  token?: string;
}

export interface WorkerCommand {
  command: string;
  args: string[];
  /** Only what the worker adds to the head's environment. */
  env: Record<string, string>;
}

/**
 * The command line of one worker. Every resource is stated, 0 where the group names none, so a
 * worker registers with exactly what the planner sized the group by instead of what it detects.
 * Proxy and metrics ports are 0 so several workers (and the head) fit on one machine.
 */
export function raylineWorkerCommand(
  group: WorkerGroupConfig,
  workerId: string,
  options: WorkerCommandOptions,
): WorkerCommand {
  const { CPU, GPU, memory, ...custom } = group.resources;
  const env: Record<string, string> = { RAYLINE_GROUP: group.groupName };
  if (options.token !== undefined) env.RAYLINE_API_TOKEN = options.token;
  return {
    command: process.execPath,
    args: [
      ...childExecArgv(),
      cliEntry,
      'start',
      '--address',
      options.headAddress,
      '--block',
      '--node-id',
      workerId,
      '--num-cpus',
      String(CPU ?? 0),
      '--num-gpus',
      String(GPU ?? 0),
      '--memory',
      String(Math.floor(memory ?? 0)),
      '--resources',
      JSON.stringify(custom),
      '--labels',
      JSON.stringify(group.labels),
      '--proxy-port',
      '0',
      '--metrics-port',
      '0',
    ],
    env,
  };
}

/** The default SpawnWorker: raylineWorkerCommand, its output mixed into the head's own. */
export function raylineWorkerSpawner(
  options: WorkerCommandOptions & { stdio?: StdioOptions; env?: NodeJS.ProcessEnv },
): SpawnWorker {
  return (group, workerId) => {
    const { command, args, env } = raylineWorkerCommand(group, workerId, options);
    return spawn(command, args, {
      env: { ...(options.env ?? process.env), ...env },
      stdio: options.stdio ?? ['ignore', 'inherit', 'inherit'],
    });
  };
}

export interface LocalProviderOptions {
  config: AutoscalingConfig;
  spawnWorker: SpawnWorker;
  /**
   * Whether the worker's node has registered with the head (the head's node table, keyed by the
   * `--node-id` it was started with). Read on every workers(); once true, a worker stays `running`.
   * Until then it is `pending`, counted by the planner as capacity on its way.
   */
  isRegistered?: (workerId: string) => boolean;
  /** How long a stopped worker may drain after SIGTERM before SIGKILL; default 30 s. */
  stopGraceMs?: number;
  /**
   * Delay before replacing a worker of a group whose workers exited before registering, by the
   * number of such exits in a row; default 1 s doubling up to 60 s. Reset when one registers.
   */
  restartBackoffMs?: (failures: number) => number;
  log?: Logger;
}

interface Worker {
  id: string;
  group: string;
  process: ChildProcess;
  registered: boolean;
  /** Set once stop() sent SIGTERM. */
  stopping: boolean;
  /** SIGKILL after the grace period, armed by stop(). */
  killTimer?: NodeJS.Timeout;
  /** Resolves when the process has exited (or never started). */
  exited: Promise<void>;
}

interface GroupState {
  /** The last targetWorkers applied; undefined until the first apply. */
  target: number | undefined;
  /** Workers of the group that exited before registering, in a row. */
  failures: number;
  /** No replacement is started before this time (ms since epoch). */
  notBefore: number;
}

export class LocalProvider implements NodeProvider {
  readonly #config: AutoscalingConfig;
  readonly #groups: Map<string, WorkerGroupConfig>;
  readonly #spawn: SpawnWorker;
  readonly #isRegistered: (workerId: string) => boolean;
  readonly #stopGraceMs: number;
  readonly #backoff: (failures: number) => number;
  readonly #log: Logger | undefined;
  readonly #workers = new Map<string, Worker>();
  readonly #state = new Map<string, GroupState>();
  #closed = false;

  constructor(options: LocalProviderOptions) {
    this.#config = options.config;
    this.#groups = new Map(options.config.workerGroupSpecs.map((g) => [g.groupName, g]));
    this.#spawn = options.spawnWorker;
    this.#isRegistered = options.isRegistered ?? (() => false);
    this.#stopGraceMs = options.stopGraceMs ?? 30_000;
    this.#backoff = options.restartBackoffMs ?? ((n) => Math.min(60_000, 1000 * 2 ** (n - 1)));
    this.#log = options.log?.child({ component: 'autoscaler-local' });
    for (const name of this.#groups.keys())
      this.#state.set(name, { target: undefined, failures: 0, notBefore: 0 });
  }

  async shape(): Promise<ClusterShape> {
    return clusterShapeOf(this.#config);
  }

  async workers(): Promise<ProviderWorker[]> {
    return [...this.#workers.values()].map((w) => ({ id: w.id, group: w.group, state: this.#stateOf(w) }));
  }

  /**
   * Stops exactly the workers in `remove` that are ours, then starts workers until each group has
   * its target. A group with more live workers than its target keeps them: only the planner picks
   * which worker goes, and it names idle ones in a later decision. The first apply starts at least
   * a group's `replicas`, its initial size.
   */
  async apply(decision: ScaleDecision): Promise<void> {
    if (this.#closed) return;
    for (const group of decision.groups) {
      const state = this.#state.get(group.name);
      if (!state) {
        this.#log?.warn(
          { group: group.name },
          'decision names a worker group the autoscaling config does not have',
        );
        continue;
      }
      for (const id of group.remove) {
        const worker = this.#workers.get(id);
        if (worker?.group === group.name) this.#stop(worker);
        else
          this.#log?.debug(
            { group: group.name, worker: id },
            'asked to remove a worker this provider does not run',
          );
      }
      const initial = state.target === undefined ? initialReplicas(this.#groups.get(group.name)!) : 0;
      state.target = Math.max(group.targetWorkers, initial);
    }
    this.#converge();
  }

  /** Replaces workers that exited on their own, so each group is back at its last target. */
  async reconcile(): Promise<void> {
    if (!this.#closed) this.#converge();
  }

  /** Stops every worker this provider started and waits for them to exit; later applies do nothing. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = [...this.#workers.values()];
    for (const worker of workers) this.#stop(worker);
    await Promise.all(workers.map((w) => w.exited));
  }

  #stateOf(worker: Worker): ProviderWorker['state'] {
    if (worker.stopping) return 'terminating';
    if (!worker.registered && this.#isRegistered(worker.id)) {
      worker.registered = true;
      this.#state.get(worker.group)!.failures = 0;
    }
    return worker.registered ? 'running' : 'pending';
  }

  #converge(): void {
    const now = Date.now();
    for (const [name, state] of this.#state) {
      if (state.target === undefined) continue;
      const live = [...this.#workers.values()].filter((w) => w.group === name && !w.stopping).length;
      const missing = state.target - live;
      if (missing <= 0) continue;
      if (now < state.notBefore) {
        this.#log?.debug(
          { group: name, missing, retryInMs: state.notBefore - now },
          'waiting before restarting workers',
        );
        continue;
      }
      for (let i = 0; i < missing; i++) this.#start(this.#groups.get(name)!);
    }
  }

  #start(group: WorkerGroupConfig): void {
    const id = `${group.groupName}-${randomBytes(3).toString('hex')}`;
    let child: ChildProcess;
    try {
      child = this.#spawn(group, id);
    } catch (error) {
      this.#log?.error({ group: group.groupName, worker: id, err: error }, 'could not start a worker');
      this.#failed(group.groupName);
      return;
    }
    let resolveExited!: () => void;
    const worker: Worker = {
      id,
      group: group.groupName,
      process: child,
      registered: false,
      stopping: false,
      exited: new Promise((resolve) => {
        resolveExited = resolve;
      }),
    };
    const forget = (how: Record<string, unknown>) => {
      if (!this.#workers.has(id)) return;
      clearTimeout(worker.killTimer);
      this.#workers.delete(id);
      resolveExited();
      if (worker.stopping) this.#log?.info({ group: worker.group, worker: id, ...how }, 'worker stopped');
      else {
        this.#log?.warn({ group: worker.group, worker: id, ...how }, 'worker exited on its own');
        if (!worker.registered) this.#failed(worker.group);
      }
    };
    child.once('exit', (code, signal) => forget({ pid: child.pid, code, signal }));
    // A process that could not be spawned at all emits 'error' and no 'exit'.
    child.on('error', (error) => {
      if (child.pid === undefined) forget({ err: error });
      else this.#log?.warn({ worker: id, err: error }, 'worker process error');
    });
    this.#workers.set(id, worker);
    this.#log?.info({ group: group.groupName, worker: id, pid: child.pid }, 'started worker');
  }

  #stop(worker: Worker): void {
    if (worker.stopping) return;
    worker.stopping = true;
    this.#log?.info({ group: worker.group, worker: worker.id, pid: worker.process.pid }, 'stopping worker');
    const { process: child } = worker;
    worker.killTimer = setTimeout(() => {
      this.#log?.warn(
        { worker: worker.id, pid: child.pid, graceMs: this.#stopGraceMs },
        'worker did not stop; killing it',
      );
      child.kill('SIGKILL');
    }, this.#stopGraceMs);
    child.kill('SIGTERM');
  }

  #failed(group: string): void {
    const state = this.#state.get(group)!;
    state.failures++;
    state.notBefore = Date.now() + this.#backoff(state.failures);
  }
}
