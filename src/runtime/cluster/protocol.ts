/**
 * Messages between the head and its worker nodes over the cluster channel (port 6379). The head
 * decides; a worker starts and stops the replica processes it is told to, reports what happens to
 * them, serves HTTP with the routing tables the head pushes, and keeps doing so while the head is away.
 */
import type { AppRoute } from '../controller/controller.ts';
import type { Grant } from '../placement/types.ts';
import type { QueuedCount, ReplicaSpec } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';

export interface NodeInfo {
  id: string;
  /** The address other nodes reach this node's replicas and proxy at. */
  ip: string;
  /** What the node offers: CPU, GPU, memory (bytes), custom resources. */
  resources: Record<string, number>;
  gpuIds: string[];
  labels: Record<string, string>;
  /** The worker group it belongs to (cluster autoscaler), if any. */
  group?: string;
  /** `host:port` of its HTTP proxy, when it runs one. */
  proxy?: string;
}

/** What a head tells a node when it starts a replica there; the node keeps it and reports it back. */
export interface ReplicaLaunchOrder {
  /** The node adds where the replica listens, its node id and the cluster token. */
  spec: Omit<ReplicaSpec, 'address'>;
  env: Record<string, string>;
  cwd: string;
  /** The deployment version the controller started it as (for adoption after a head restart). */
  version: string;
  grants: Grant[];
}

/** A replica a node runs, as it reports it when it (re)registers. */
export interface ReplicaReport extends ReplicaLaunchOrder {
  spec: ReplicaSpec;
  state: 'STARTING' | 'RUNNING';
  pid: number | undefined;
  tcpAddress: string | undefined;
}

export type ToHead =
  /**
   * First on a connection: the cluster token alone, a few bytes, so that the head holds little for
   * a peer it does not know yet. The hello after it may be as large as the node's replica reports.
   */
  | { t: 'auth'; token: string }
  /** `token` is checked when no `auth` came first (a small hello may authenticate itself). */
  | { t: 'hello'; token: string; node: NodeInfo; replicas: ReplicaReport[] }
  | { t: 'heartbeat'; proxyHealthy: boolean }
  /** The node is shutting down on purpose: forget it now rather than after the timeout. */
  | { t: 'leaving' }
  | { t: 'ready'; id: string; address: string; tcpAddress: string | undefined; pid: number | undefined }
  | { t: 'start-failed'; id: string; message: string; nodeLeaving?: boolean }
  | { t: 'exit'; id: string; code: number | null; signal: string | null }
  | { t: 'load'; id: string; ongoing: number; queued: QueuedCount[] }
  | { t: 'answer'; requestId: number; ok: boolean; message?: string; metrics?: unknown[] };

export type ToNode =
  | { t: 'welcome'; headNodeId: string }
  /** `retry`: the refusal may pass (the node id is still held by a live session); otherwise final. */
  | { t: 'refused'; reason: string; retry?: boolean }
  | { t: 'launch'; order: ReplicaLaunchOrder; routes: DeploymentRoute[] }
  | { t: 'stop'; id: string; waitLoopS: number; timeoutS: number }
  | { t: 'kill'; id: string }
  | { t: 'reconfigure'; id: string; userConfig: unknown; maxOngoingRequests: number }
  | { t: 'ask'; requestId: number; id: string; what: 'health' | 'metrics'; timeoutMs: number }
  | { t: 'routes'; routes: DeploymentRoute[]; appRoutes: AppRoute[] };
