/**
 * The replica processes of the node this process runs: launches them (reachable over unix
 * sockets, and over TCP when the node is part of a cluster) and keeps them current with the
 * routing tables, so that their handles can call any deployment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplicaSpec } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import { ReplicaProcess } from './replica-process.ts';

export interface ReplicaLaunch {
  spec: Omit<ReplicaSpec, 'address'>;
  env: Record<string, string>;
  cwd: string;
}

export class LocalNode {
  readonly nodeId: string;
  /** Short path: unix socket paths are limited to about 100 bytes. */
  readonly #socketDir = mkdtempSync(join(tmpdir(), 'rl-'));
  readonly #output: NodeJS.WritableStream;
  readonly #replicas = new Map<string, ReplicaProcess>();

  constructor(output: NodeJS.WritableStream, nodeId = `${hostname()}-${process.pid}`) {
    this.#output = output;
    this.nodeId = nodeId;
  }

  launch({ spec, env, cwd }: ReplicaLaunch): ReplicaProcess {
    const address = join(this.#socketDir, `${spec.replicaId}.sock`);
    const replica = new ReplicaProcess({ ...spec, address }, { env, cwd, output: this.#output });
    this.#replicas.set(spec.replicaId, replica);
    replica.exited().then(() => {
      if (this.#replicas.get(spec.replicaId) === replica) this.#replicas.delete(spec.replicaId);
    });
    return replica;
  }

  get replicas(): ReadonlyMap<string, ReplicaProcess> {
    return this.#replicas;
  }

  publish(routes: DeploymentRoute[]): void {
    for (const replica of this.#replicas.values()) replica.sendRoutes(routes);
  }

  close(): void {
    rmSync(this.#socketDir, { recursive: true, force: true });
  }
}
