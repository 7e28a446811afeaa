/**
 * The head's view of the cluster: its own node plus every worker that registered on the cluster
 * port. Workers present the cluster token, heartbeat, and are lost after `nodeTimeoutMs` of silence
 * (their replicas with them). A worker that (re)registers reports the replicas it runs; those the
 * head does not know (it restarted) wait as orphans for their deployment to adopt them.
 */
import net from 'node:net';
import type { Logger } from '../../observability/logger.ts';
import type { AppRoute } from '../controller/controller.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';

export type ProxyLocation = 'EveryNode' | 'HeadOnly' | 'Disabled';

import { PreAuthGate, type PreAuthTicket, preAuthDefaults } from '../transport/preauth-gate.ts';
import { Channel, serialize } from './channel.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { ReplicaReport, ToHead, ToNode } from './protocol.ts';
import { RemoteNode, type RemoteReplica } from './remote-node.ts';
import { tokensEqual } from './token.ts';

/** A node heard from this recently keeps its id against a second hello with it (two heartbeats). */
const ID_IN_USE_MS = 2_500;

/** What is wrong with a hello's shape, if anything: a peer's bytes are checked before they are used. */
function helloProblem(message: ToHead): string | undefined {
  const h = message as Partial<Extract<ToHead, { t: 'hello' }>>;
  if (typeof h.token !== 'string') return 'hello.token must be a string';
  const n = h.node;
  if (typeof n !== 'object' || n === null) return 'hello.node must be an object';
  if (typeof n.id !== 'string' || n.id === '') return 'hello.node.id must be a non-empty string';
  if (typeof n.ip !== 'string') return 'hello.node.ip must be a string';
  if (typeof n.resources !== 'object' || n.resources === null)
    return 'hello.node.resources must be an object';
  if (!Array.isArray(n.gpuIds)) return 'hello.node.gpuIds must be an array';
  if (!Array.isArray(h.replicas)) return 'hello.replicas must be an array';
  for (const r of h.replicas) {
    if (typeof r?.spec?.replicaId !== 'string' || !Array.isArray(r.grants)) {
      return 'hello.replicas[] must be replica reports';
    }
  }
  return undefined;
}

export interface Orphan {
  replica: RemoteReplica;
  report: ReplicaReport;
  sinceMs: number;
  /** Its resources are held in the controller's ledger. */
  reserved?: boolean;
}

export interface HeadClusterOptions {
  local: ClusterNode;
  log: Logger;
  token?: string;
  /** Bounds peers that have not presented the token yet (connections, bytes, time). */
  gate?: PreAuthGate;
  /** Silence after which a worker is lost; default 10 s (RAYLINE_NODE_TIMEOUT_S). */
  nodeTimeoutMs?: number;
  /** Nodes or orphans changed: reconcile. */
  onChange(): void;
}

export class HeadCluster {
  readonly local: ClusterNode;
  readonly #workers = new Map<string, RemoteNode>();
  #orphans: Orphan[] = [];
  readonly #options: HeadClusterOptions;
  readonly #timeoutMs: number;
  readonly #gate: PreAuthGate;
  #server: net.Server | undefined;
  #watchdog: NodeJS.Timeout;
  #lastPublished: [DeploymentRoute[], AppRoute[]] | undefined;

  constructor(options: HeadClusterOptions) {
    this.#options = options;
    this.local = options.local;
    this.#gate =
      options.gate ?? new PreAuthGate({ port: 'cluster', limits: preAuthDefaults.cluster, log: options.log });
    this.#timeoutMs = options.nodeTimeoutMs ?? Number(process.env.RAYLINE_NODE_TIMEOUT_S ?? 10) * 1000;
    this.#watchdog = setInterval(() => this.#checkSilence(), Math.min(1000, this.#timeoutMs / 2));
    this.#watchdog.unref();
  }

  /** Starts accepting workers; resolves with the bound `host:port`. */
  listen(host: string, port: number): Promise<string> {
    const server = net.createServer((socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        const address = server.address() as net.AddressInfo;
        resolve(`${host}:${address.port}`);
      });
    });
  }

  nodes(): ClusterNode[] {
    return [this.local, ...this.#workers.values()];
  }

  node(id: string): ClusterNode | undefined {
    return id === this.local.id ? this.local : this.#workers.get(id);
  }

  get workers(): ReadonlyMap<string, RemoteNode> {
    return this.#workers;
  }

  /**
   * Every node gets the deployments' tables (handles call anywhere); proxies get the application
   * routes only where `proxy_location` puts a proxy.
   */
  publish(routes: DeploymentRoute[], appRoutes: AppRoute[], proxyLocation: ProxyLocation): void {
    const headRoutes = proxyLocation === 'Disabled' ? [] : appRoutes;
    const workerRoutes = proxyLocation === 'EveryNode' ? appRoutes : [];
    this.#lastPublished = [routes, workerRoutes];
    this.local.publish(routes, headRoutes);
    if (this.#workers.size === 0) return;
    // Every worker gets the same bytes: serialize once, not once per node.
    const line = serialize<ToNode>({ t: 'routes', routes, appRoutes: workerRoutes });
    for (const node of this.#workers.values()) node.channel?.sendSerialized(line);
  }

  /** Takes the orphans that are replicas of this deployment version, for it to adopt. */
  claimOrphans(app: string, deployment: string, version: string): Orphan[] {
    const claimed: Orphan[] = [];
    this.#orphans = this.#orphans.filter((o) => {
      const { spec } = o.report;
      const match =
        o.replica.alive && spec.app === app && spec.deployment === deployment && o.report.version === version;
      if (match) claimed.push(o);
      return !match && o.replica.alive;
    });
    return claimed;
  }

  /** Stops orphans no deployment claimed once `unclaimed` says so (they belong to nothing now). */
  stopOrphans(unclaimed: (orphan: Orphan) => boolean): void {
    this.#orphans = this.#orphans.filter((o) => {
      if (!o.replica.alive) return false;
      if (!unclaimed(o)) return true;
      this.#options.log.info(
        { replica: o.report.spec.replicaId, node: o.replica.nodeId },
        'stopping a replica no deployment claimed after the head restarted',
      );
      o.replica.stop(0, 5);
      return false;
    });
  }

  unreservedOrphans(): Orphan[] {
    return this.#orphans.filter((o) => !o.reserved && o.replica.alive);
  }

  dropOrphan(orphan: Orphan): void {
    this.#orphans = this.#orphans.filter((o) => o !== orphan);
  }

  get orphanCount(): number {
    return this.#orphans.length;
  }

  #accept(socket: net.Socket): void {
    const ticket = this.#gate.admit(socket);
    if (!ticket) return;
    const channel = new Channel<ToHead, ToNode>(socket);
    let node: RemoteNode | undefined;
    const log = this.#options.log;
    channel.onMessage = (message) => {
      if (node && message.t === 'leaving') return this.#leaving(node);
      if (node) return node.onMessage(message);
      if (message.t === 'auth' && !channel.authenticated) {
        this.#authenticate(channel, ticket, (message as { token?: unknown }).token);
        return;
      }
      const hello = message.t === 'hello' ? helloProblem(message) : 'the first message must be auth or hello';
      if (hello) {
        log.warn({ peer: socket.remoteAddress }, `refused a node: ${hello}`);
        channel.close();
        return;
      }
      const h = message as Extract<ToHead, { t: 'hello' }>;
      if (!channel.authenticated && !this.#authenticate(channel, ticket, h.token, h.node.id)) return;
      const holder = this.#workers.get(h.node.id);
      if (holder?.channel && !holder.channel.closed && Date.now() - holder.lastSeenMs < ID_IN_USE_MS) {
        // Another live session holds this id (a duplicate --node-id): taking it over would flap.
        log.warn(
          { node: h.node.id, peer: socket.remoteAddress },
          'refused a node whose id a live node holds',
        );
        channel.send({ t: 'refused', reason: `node id '${h.node.id}' is held by a live node`, retry: true });
        channel.close();
        return;
      }
      node = this.#register(h, channel);
    };
    channel.onClose = () => {
      if (!node || node.channel !== channel) return;
      if (node.leaving) this.#forget(node, 'node left the cluster');
      else log.warn({ node: node.id }, 'lost the connection to a node; waiting for it to come back');
    };
  }

  /** Checks a presented cluster token; a peer without it is told so and closed. */
  #authenticate(
    channel: Channel<ToHead, ToNode>,
    ticket: PreAuthTicket,
    presented: unknown,
    nodeId?: string,
  ): boolean {
    const expected = this.#options.token;
    if (expected !== undefined && (typeof presented !== 'string' || !tokensEqual(presented, expected))) {
      this.#options.log.warn(
        { node: nodeId, peer: channel.socket.remoteAddress },
        'refused a node without the cluster token',
      );
      channel.send({ t: 'refused', reason: 'wrong or missing cluster token' });
      channel.close();
      return false;
    }
    ticket.authenticated();
    channel.authenticated = true;
    return true;
  }

  #register(hello: Extract<ToHead, { t: 'hello' }>, channel: Channel<ToHead, ToNode>): RemoteNode {
    const { node: info, replicas } = hello;
    let node = this.#workers.get(info.id);
    if (node?.channel && node.channel !== channel) node.channel.close();
    const known = node !== undefined;
    node ??= new RemoteNode(info);
    this.#workers.set(info.id, node);
    node.register(info, channel);
    const reported = new Set(replicas.map((r) => r.spec.replicaId));
    // Replicas the head started there that the node no longer runs died while it was away.
    for (const replica of [...node.replicas.values()]) {
      if (!reported.has(replica.spec.replicaId)) replica.gone(null, 'NODE_LOST');
    }
    for (const report of replicas) {
      const existing = node.replicas.get(report.spec.replicaId);
      if (existing) {
        existing.adopt(report);
        existing.resend();
        continue;
      }
      const replica = node.replica(report);
      replica.adopt(report);
      if (report.state === 'RUNNING') this.#orphans.push({ replica, report, sinceMs: Date.now() });
      else replica.kill(); // it was starting when the head went away: start again under control.
    }
    this.#options.log.info(
      { node: info.id, ip: info.ip, resources: info.resources, group: info.group, replicas: replicas.length },
      known ? 'node re-registered' : 'node registered',
    );
    channel.send({ t: 'welcome', headNodeId: this.local.id });
    if (this.#lastPublished) node.publish(...this.#lastPublished);
    this.#options.onChange();
    return node;
  }

  #checkSilence(): void {
    const now = Date.now();
    for (const node of this.#workers.values()) {
      if (now - node.lastSeenMs > this.#timeoutMs)
        this.#forget(node, 'node lost: its replicas are rescheduled');
    }
  }

  /**
   * A worker that is leaving (its pod deleted) drains before it goes: its replicas stay in the
   * routing tables, so that calls keep reaching them until they stop, and callers retry elsewhere
   * what they then refuse. Removing them at once emptied the tables of a head whose whole cluster
   * was being deleted, and its proxy queued requests nothing would ever serve. The node is forgotten
   * when its connection closes; nothing new is placed on it meanwhile.
   */
  #leaving(node: RemoteNode): void {
    this.#options.log.info({ node: node.id, replicas: node.replicas.size }, 'node leaving: draining');
    node.leaving = true;
    this.#options.onChange();
  }

  /** Where new replicas may go: every node but those leaving. */
  placeableNodes(): ClusterNode[] {
    return this.nodes().filter((n) => !(n instanceof RemoteNode && n.leaving));
  }

  #forget(node: RemoteNode, why: string): void {
    if (this.#workers.get(node.id) !== node) return;
    this.#options.log.warn(
      { node: node.id, silentS: (Date.now() - node.lastSeenMs) / 1000, replicas: node.replicas.size },
      why,
    );
    this.#workers.delete(node.id);
    node.lost();
    this.#options.onChange();
  }

  close(): void {
    clearInterval(this.#watchdog);
    this.#server?.close();
    for (const node of this.#workers.values()) node.channel?.close();
  }
}
