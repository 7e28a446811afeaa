/** The node this process runs on: it launches replica processes reachable over unix sockets. */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplicaSpec } from '../replica/protocol.ts';
import { ReplicaProcess } from './replica-process.ts';

export interface ReplicaLaunch {
  spec: Omit<ReplicaSpec, 'address'>;
  env: Record<string, string>;
  cwd: string;
}

export class LocalNode {
  readonly nodeId: string;
  readonly nodeIp = '127.0.0.1';
  /** Short path: unix socket paths are limited to about 100 bytes. */
  readonly #socketDir = mkdtempSync(join(tmpdir(), 'rl-'));
  readonly #output: NodeJS.WritableStream;

  constructor(output: NodeJS.WritableStream) {
    this.#output = output;
    this.nodeId = `${hostname()}-${process.pid}`;
  }

  launch({ spec, env, cwd }: ReplicaLaunch): ReplicaProcess {
    const address = join(this.#socketDir, `${spec.replicaId}.sock`);
    return new ReplicaProcess({ ...spec, address }, { env, cwd, output: this.#output });
  }

  close(): void {
    rmSync(this.#socketDir, { recursive: true, force: true });
  }
}
