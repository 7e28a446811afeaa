/**
 * Every router of one process, kept current from the routing tables the controller pushes. A call
 * for a deployment whose table has not arrived yet waits in that deployment's queue.
 */
import type { QueuedCount } from '../replica/protocol.ts';
import { type DeploymentRoute, DeploymentRouter, type ReplicaEndpoint } from './deployment-router.ts';
import { ReplicaClientPool } from './replica-client.ts';

const key = (app: string, deployment: string) => `${app}\u0000${deployment}`;

export class CallRouter {
  readonly #pool = new ReplicaClientPool();
  /** The node this process runs on: replicas elsewhere are reached over TCP. */
  nodeId: string | undefined;

  /** The cluster token presented to replicas on other nodes. */
  set token(token: string | undefined) {
    this.#pool.token = token;
  }

  readonly #routers = new Map<string, DeploymentRouter>();
  readonly #routes = new Map<string, DeploymentRoute>();
  /** Lets metrics observe queues as routers appear. */
  onRouterCreated: ((router: DeploymentRouter) => void) | undefined;

  router(app: string, deployment: string): DeploymentRouter {
    const k = key(app, deployment);
    let router = this.#routers.get(k);
    if (!router) {
      router = new DeploymentRouter(app, deployment, this.#pool);
      this.#routers.set(k, router);
      this.onRouterCreated?.(router);
      const route = this.#routes.get(k);
      if (route) router.update(route);
    }
    return router;
  }

  /**
   * Applies a full routing table: deployments absent from it no longer exist. Routers are created
   * on first use, so a process only tracks the deployments it calls.
   */
  update(routes: readonly DeploymentRoute[]): void {
    this.#routes.clear();
    const addresses = new Set<string>();
    for (const table of routes) {
      const route = this.#localize(table);
      const k = key(route.app, route.deployment);
      this.#routes.set(k, route);
      for (const r of route.replicas) addresses.add(r.address);
      this.#routers.get(k)?.update(route);
    }
    for (const [k, router] of this.#routers) {
      if (this.#routes.has(k)) continue;
      this.#routers.delete(k);
      router.close();
    }
    this.#pool.retain(addresses);
  }

  /** Endpoints on other nodes use their TCP address; those on this node keep their unix socket. */
  #localize(route: DeploymentRoute): DeploymentRoute {
    const remote = (e: ReplicaEndpoint) => e.tcpAddress !== undefined && e.nodeId !== this.nodeId;
    if (!route.replicas.some(remote)) return route;
    return {
      ...route,
      replicas: route.replicas.map((e) => (remote(e) ? { ...e, address: e.tcpAddress! } : e)),
    };
  }

  /** Calls waiting for capacity, per deployment that has any. */
  queuedCounts(): QueuedCount[] {
    const out: QueuedCount[] = [];
    for (const router of this.#routers.values()) {
      if (router.queued > 0) out.push([router.app, router.deployment, router.queued]);
    }
    return out;
  }

  close(): void {
    this.#pool.closeAll();
  }
}
