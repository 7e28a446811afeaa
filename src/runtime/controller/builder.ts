/** Runs an application's import in a short-lived child process and returns its deployment graph. */
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { type ErrorCode, RaylineError } from '../../errors.ts';
import type { DeploymentOptionsInput } from '../../schema/deployment-config.ts';
import { childExecArgv, entryPath, inheritedEnv } from '../node/child-entry.ts';

const buildMain = entryPath('./build-main.ts', import.meta.url);

/** Builds run below the head's priority (higher is nicer). */
const BUILD_NICENESS = 10;

export interface BuildRequest {
  importPath: string;
  workingDir: string;
  args: Record<string, unknown>;
}

export interface BuiltDeployment {
  name: string;
  isIngress: boolean;
  codeOptions: DeploymentOptionsInput;
}

export type BuildReply =
  | { ok: true; deployments: BuiltDeployment[] }
  | { ok: false; code: ErrorCode; message: string };

export function buildApplication(
  request: BuildRequest,
  env: Record<string, string>,
  output: NodeJS.WritableStream,
  timeoutMs = 120_000,
): Promise<BuiltDeployment[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...childExecArgv(), buildMain], {
      cwd: request.workingDir,
      env: { ...inheritedEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    // A build is background work: the head that serves traffic gets the CPU first.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, BUILD_NICENESS);
      } catch {
        // Not permitted here: the build runs at the head's priority.
      }
    }
    let stderr = '';
    child.stdout!.pipe(output, { end: false });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(
        new RaylineError(
          'RL_IMPORT_FAILED',
          `importing '${request.importPath}' took longer than ${timeoutMs / 1000} s`,
        ),
      );
    }, timeoutMs);
    const finish = (result: BuiltDeployment[] | RaylineError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result instanceof RaylineError) reject(result);
      else resolve(result);
    };
    child.once('error', (error) => {
      finish(
        new RaylineError(
          'RL_IMPORT_FAILED',
          `cannot start the build of '${request.importPath}': ${error.message}`,
        ),
      );
    });
    child.once('message', (reply: BuildReply) => {
      finish(reply.ok ? reply.deployments : new RaylineError(reply.code, reply.message));
    });
    child.once('exit', (code) => {
      const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      finish(
        new RaylineError(
          'RL_IMPORT_FAILED',
          `importing '${request.importPath}' crashed (exit code ${code})${detail}`,
        ),
      );
    });
    child.send(request);
  });
}

/**
 * Runs builds a few at a time (about the machine's cores): a config with a hundred applications
 * would otherwise start a hundred Node processes at once, starving the head that serves traffic.
 */
export class BuildPool {
  readonly size: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(size: number) {
    this.size = Math.max(1, Math.floor(size));
  }

  /** Builds running now, and waiting. */
  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /** Runs `job` when a slot is free; answers undefined, without running it, if it is stale by then. */
  run<T>(job: () => Promise<T>, stale: () => boolean): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const start = () => {
        if (stale()) {
          resolve(undefined);
          return;
        }
        this.#running++;
        let result: Promise<T>;
        try {
          result = job();
        } catch (error) {
          result = Promise.reject(error);
        }
        result.then(resolve, reject).finally(() => {
          this.#running--;
          this.#next();
        });
      };
      this.#queue.push(start);
      this.#next();
    });
  }

  #next(): void {
    while (this.#running < this.size && this.#queue.length > 0) this.#queue.shift()!();
  }
}
