/**
 * A replica as seen by its node: a child process spoken to over IPC. Starts it, asks it things
 * (metrics, health), stops it gracefully, and reports when it exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { RaylineError } from '../../errors.ts';
import type { FromReplica, ReplicaSpec, ToReplica } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import { childExecArgv, entryPath, inheritedEnv } from './child-entry.ts';
import type { ReplicaHandle, ReplicaLoad } from './replica-handle.ts';

const replicaMain = entryPath('../replica/main.ts', import.meta.url);

/**
 * How a leaving node (head or worker) stops its replicas when no deployment says otherwise: Ray
 * Serve's defaults for a graceful shutdown.
 */
export const LEAVING_STOP_WAIT_LOOP_S = 2;
export const LEAVING_STOP_TIMEOUT_S = 20;

export interface ReplicaProcessOptions {
  env: Record<string, string>;
  cwd: string;
  /** Receives each line the replica writes (JSON log lines). */
  output: NodeJS.WritableStream;
}

export class ReplicaProcess implements ReplicaHandle {
  readonly spec: ReplicaSpec;
  readonly #child: ChildProcess;
  #nextRequestId = 1;
  readonly #pending = new Map<number, (message: FromReplica) => void>();
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  /** Called once when the process exits, for whatever reason. */
  onExit: ((code: number | null, signal: NodeJS.Signals | 'NODE_LOST' | null) => void) | undefined;
  onMessage: ((message: FromReplica) => void) | undefined;
  /** The replica's last load report. */
  load: ReplicaLoad | undefined;
  /** Where callers on other nodes reach it, once ready (when it listens on TCP). */
  tcpAddress: string | undefined;

  constructor(spec: ReplicaSpec, options: ReplicaProcessOptions) {
    this.spec = spec;
    this.#child = spawn(process.execPath, [...childExecArgv(), replicaMain], {
      cwd: options.cwd,
      env: {
        ...inheritedEnv(),
        ...options.env,
        RAYLINE_REPLICA_ID: spec.replicaId,
        ...(spec.nodeId ? { RAYLINE_NODE_ID: spec.nodeId } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    // Whole lines only, so that the lines of several replicas never interleave mid-line.
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        options.output.write(`${line}\n`);
      });
    }
    this.#child.on('message', (message: FromReplica) => {
      if (message.type === 'load') {
        this.load = { ongoing: message.ongoing, queued: message.queued, atMs: Date.now() };
      } else if ('requestId' in message) {
        const resolve = this.#pending.get(message.requestId);
        this.#pending.delete(message.requestId);
        resolve?.(message);
      } else {
        this.onMessage?.(message);
      }
    });
    this.#exited = new Promise((resolve) => {
      const exited = (code: number | null, signal: NodeJS.Signals | null) => {
        this.#exitCode = code;
        for (const resolvePending of this.#pending.values()) {
          resolvePending({ type: 'health', requestId: 0, ok: false, message: 'replica exited' });
        }
        this.#pending.clear();
        this.onExit?.(code, signal);
        resolve(code);
      };
      this.#child.once('exit', exited);
      // A process that could not be spawned emits 'error' and never 'exit'.
      this.#child.on('error', () => {
        if (this.#child.pid === undefined && this.#exitCode === undefined) exited(null, null);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#exitCode === undefined;
  }

  #send(message: ToReplica): void {
    if (this.alive && this.#child.connected) this.#child.send(message);
  }

  /** Resolves when the replica reports ready; rejects with the constructor's error or an early exit. */
  start(routes: DeploymentRoute[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const previous = this.onMessage;
      this.onMessage = (message) => {
        if (message.type === 'ready') {
          this.tcpAddress = message.tcpAddress;
          resolve();
        } else if (message.type === 'init-failed')
          reject(new RaylineError('RL_USER_EXCEPTION', message.message));
        else previous?.(message);
      };
      this.#exited.then((code) =>
        reject(
          new RaylineError('RL_REPLICA_DIED', `replica process exited with code ${code} before it was ready`),
        ),
      );
      this.#send({ type: 'init', spec: this.spec, routes });
    });
  }

  sendRoutes(routes: DeploymentRoute[]): void {
    this.#send({ type: 'routes', routes });
  }

  reconfigure(userConfig: unknown, maxOngoingRequests: number): void {
    this.#send({ type: 'reconfigure', userConfig, maxOngoingRequests });
  }

  #ask(message: (requestId: number) => ToReplica, timeoutMs: number): Promise<FromReplica | undefined> {
    if (!this.alive) return Promise.resolve(undefined);
    const requestId = this.#nextRequestId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(requestId, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.#send(message(requestId));
    });
  }

  /** Runs the user's checkHealth(); a throw, an exit or no answer within the timeout is a failure. */
  async checkHealth(timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    const reply = await this.#ask((requestId) => ({ type: 'health', requestId }), timeoutMs);
    if (!reply) return { ok: false, message: `health check did not answer within ${timeoutMs / 1000} s` };
    if (reply.type !== 'health') return { ok: false, message: 'unexpected answer to a health check' };
    return { ok: reply.ok, message: reply.message ?? '' };
  }

  async metrics(timeoutMs = 2000): Promise<unknown[]> {
    const reply = await this.#ask((requestId) => ({ type: 'metrics', requestId }), timeoutMs);
    return reply?.type === 'metrics' ? reply.metrics : [];
  }

  /** Graceful stop; force-kills after the timeout plus a second of grace. */
  async stop(waitLoopS: number, timeoutS: number): Promise<void> {
    if (!this.alive) return;
    this.#send({ type: 'stop', waitLoopS, timeoutS });
    const killTimer = setTimeout(() => this.kill(), timeoutS * 1000 + 1000);
    await this.#exited;
    clearTimeout(killTimer);
  }

  kill(): void {
    if (this.alive) this.#child.kill('SIGKILL');
  }

  exited(): Promise<number | null> {
    return this.#exited;
  }
}
