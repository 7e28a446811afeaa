/**
 * A node as the head's controller sees it: what it offers (for placement), how to start a replica
 * there, and how routing tables reach it. The head's own node and every worker look the same.
 */
import type { AppRoute } from '../controller/controller.ts';
import type { ReplicaHandle } from '../node/replica-handle.ts';
import type { NodeView } from '../placement/types.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import type { ReplicaLaunchOrder } from './protocol.ts';

export interface ClusterNode {
  readonly id: string;
  readonly ip: string;
  /** Kept as the same object while the node's capacity is unchanged (the ledger relies on it). */
  readonly view: NodeView;
  /** Worker group (cluster autoscaler); undefined for the head. */
  readonly group: string | undefined;
  /** Whether its HTTP proxy answers, for the REST API's `proxies`; undefined when it runs none. */
  readonly proxyHealthy: boolean | undefined;
  /** Sets up a replica there; `start()` on the handle launches it. */
  replica(order: ReplicaLaunchOrder): ReplicaHandle;
  publish(routes: DeploymentRoute[], appRoutes: AppRoute[]): void;
}
