/** Messages between a node and the replica processes it supervises (over the child's IPC channel). */
import type { DeploymentRoute } from '../router/deployment-router.ts';

export interface ReplicaSpec {
  replicaId: string;
  app: string;
  deployment: string;
  /** The application's route prefix, for metric labels. */
  route: string;
  importPath: string;
  workingDir: string;
  args: Record<string, unknown>;
  userConfig: unknown;
  maxOngoingRequests: number;
  /** Where the replica listens: a unix socket path. */
  address: string;
  /** Also listen on TCP on this address of the node (any port), for callers on other nodes. */
  tcpHost?: string;
  /** The node the replica runs on. */
  nodeId?: string;
  /**
   * The cluster's replica credential (derived from the admin token, which replicas never get):
   * callers on TCP present it first (Hello frame); the replica presents it to others.
   */
  clusterToken?: string;
  logLevel: string;
  /** Send exception stacks to callers (RAYLINE_DEBUG). */
  debug: boolean;
}

export type ToReplica =
  | { type: 'init'; spec: ReplicaSpec; routes: DeploymentRoute[] }
  | { type: 'routes'; routes: DeploymentRoute[] }
  | { type: 'reconfigure'; userConfig: unknown; maxOngoingRequests: number }
  | { type: 'metrics'; requestId: number }
  | { type: 'health'; requestId: number }
  | { type: 'stop'; waitLoopS: number; timeoutS: number };

/** Calls waiting at a caller for one deployment (for autoscaling). */
export type QueuedCount = [app: string, deployment: string, queued: number];

export type FromReplica =
  | { type: 'ready'; address: string; tcpAddress?: string }
  | { type: 'load'; ongoing: number; queued: QueuedCount[] }
  | { type: 'init-failed'; message: string }
  | { type: 'metrics'; requestId: number; metrics: unknown[] }
  | { type: 'health'; requestId: number; ok: boolean; message?: string }
  | { type: 'reconfigure-failed'; message: string };
