/**
 * A replica as the controller drives it, wherever it runs: a child process of this node
 * (`ReplicaProcess`) or one on a worker node reached through the cluster channel (`RemoteReplica`).
 */
import type { QueuedCount, ReplicaSpec } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';

export interface ReplicaLoad {
  ongoing: number;
  queued: QueuedCount[];
  atMs: number;
}

export interface ReplicaHandle {
  readonly spec: ReplicaSpec;
  readonly pid: number | undefined;
  readonly alive: boolean;
  /** Where callers on other nodes reach it, once ready (when it listens on TCP). */
  readonly tcpAddress: string | undefined;
  /** The replica's last load report. */
  readonly load: ReplicaLoad | undefined;
  /** Called once when the replica is gone, for whatever reason (a lost node reports signal 'NODE_LOST'). */
  onExit: ((code: number | null, signal: NodeJS.Signals | 'NODE_LOST' | null) => void) | undefined;
  /** Resolves when the replica reports ready; rejects with the constructor's error or an early exit. */
  start(routes: DeploymentRoute[]): Promise<void>;
  reconfigure(userConfig: unknown, maxOngoingRequests: number): void;
  checkHealth(timeoutMs: number): Promise<{ ok: boolean; message: string }>;
  metrics(timeoutMs?: number): Promise<unknown[]>;
  /** Graceful stop; force-kills after the timeout. */
  stop(waitLoopS: number, timeoutS: number): Promise<void>;
  kill(): void;
  exited(): Promise<number | null>;
}
