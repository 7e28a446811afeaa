/** The node this process runs, as a cluster node: replicas start here as child processes. */
import type { AppRoute } from '../controller/controller.ts';
import type { LocalNode } from '../node/local-node.ts';
import type { ReplicaHandle } from '../node/replica-handle.ts';
import type { NodeView } from '../placement/types.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { ReplicaLaunchOrder } from './protocol.ts';

export interface LocalClusterNodeOptions {
  node: LocalNode;
  ip: string;
  resources: Record<string, number>;
  gpuIds: string[];
  labels: Record<string, string>;
  /** Replicas also listen on TCP at `ip` (other nodes call them); off for a single-node head. */
  tcp: boolean;
  token: string | undefined;
  /** This process's own proxy and handles take the tables here. */
  onPublish(routes: DeploymentRoute[], appRoutes: AppRoute[]): void;
  proxyHealthy(): boolean | undefined;
}

export class LocalClusterNode implements ClusterNode {
  readonly id: string;
  readonly ip: string;
  readonly view: NodeView;
  readonly group = undefined;
  readonly #options: LocalClusterNodeOptions;

  constructor(options: LocalClusterNodeOptions) {
    this.#options = options;
    this.id = options.node.nodeId;
    this.ip = options.ip;
    this.view = {
      id: this.id,
      total: options.resources,
      labels: options.labels,
      gpuIds: options.gpuIds,
      alive: true,
    };
  }

  get proxyHealthy(): boolean | undefined {
    return this.#options.proxyHealthy();
  }

  replica(order: ReplicaLaunchOrder): ReplicaHandle {
    const o = this.#options;
    return o.node.launch({
      spec: {
        ...order.spec,
        nodeId: this.id,
        ...(o.tcp ? { tcpHost: this.ip } : {}),
        ...(o.token !== undefined ? { clusterToken: o.token } : {}),
      },
      env: order.env,
      cwd: order.cwd,
    });
  }

  publish(routes: DeploymentRoute[], appRoutes: AppRoute[]): void {
    this.#options.node.publish(routes);
    this.#options.onPublish(routes, appRoutes);
  }
}
