/**
 * A worker node as the head holds it: its last registration, the channel it is reached on (replaced
 * when it reconnects), and the replicas it runs, each driven through a `RemoteReplica`.
 */
import { RaylineError } from '../../errors.ts';
import type { AppRoute } from '../controller/controller.ts';
import type { ReplicaHandle, ReplicaLoad } from '../node/replica-handle.ts';
import type { NodeView } from '../placement/types.ts';
import type { ReplicaSpec } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import type { Channel } from './channel.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { NodeInfo, ReplicaLaunchOrder, ReplicaReport, ToHead, ToNode } from './protocol.ts';

/** Seconds past a stop's timeout after which the head asks the node to kill the replica. */
const STOP_GRACE_S = 5;

export class RemoteNode implements ClusterNode {
  readonly id: string;
  info: NodeInfo;
  view: NodeView;
  channel: Channel<ToHead, ToNode> | undefined;
  lastSeenMs = Date.now();
  proxyHealthy: boolean | undefined;
  /** It said it is leaving: its replicas drain and still serve, nothing new is placed on it. */
  leaving = false;
  readonly replicas = new Map<string, RemoteReplica>();
  readonly #asks = new Map<number, (answer: Extract<ToHead, { t: 'answer' }> | undefined) => void>();
  #nextAsk = 1;

  constructor(info: NodeInfo) {
    this.id = info.id;
    this.info = info;
    this.view = viewOf(info);
  }

  get ip(): string {
    return this.info.ip;
  }

  get group(): string | undefined {
    return this.info.group;
  }

  /** A (re)registration: new capacity is a new view object, so the ledger notices. */
  register(info: NodeInfo, channel: Channel<ToHead, ToNode>): void {
    if (JSON.stringify(info) !== JSON.stringify(this.info)) this.view = viewOf(info);
    this.info = info;
    this.channel = channel;
    this.view.alive = true;
    this.lastSeenMs = Date.now();
  }

  send(message: ToNode): void {
    this.channel?.send(message);
  }

  replica(order: ReplicaLaunchOrder): RemoteReplica {
    const replica = new RemoteReplica(this, order);
    this.replicas.set(order.spec.replicaId, replica);
    return replica;
  }

  publish(routes: DeploymentRoute[], appRoutes: AppRoute[]): void {
    this.send({ t: 'routes', routes, appRoutes });
  }

  ask(id: string, what: 'health' | 'metrics', timeoutMs: number) {
    const requestId = this.#nextAsk++;
    return new Promise<Extract<ToHead, { t: 'answer' }> | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.#asks.delete(requestId);
        resolve(undefined);
      }, timeoutMs + 1000);
      this.#asks.set(requestId, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.send({ t: 'ask', requestId, id, what, timeoutMs });
    });
  }

  onMessage(message: ToHead): void {
    this.lastSeenMs = Date.now();
    switch (message.t) {
      case 'heartbeat':
        this.proxyHealthy = message.proxyHealthy;
        return;
      case 'leaving':
        return; // handled by the cluster, which owns the node table
      case 'answer':
        this.#asks.get(message.requestId)?.(message);
        this.#asks.delete(message.requestId);
        return;
      case 'ready':
      case 'start-failed':
      case 'exit':
      case 'load':
        this.replicas.get(message.id)?.onMessage(message);
        return;
    }
  }

  /** The node is gone: every replica it ran is lost with it. */
  lost(): void {
    this.view = { ...this.view, alive: false };
    for (const replica of this.replicas.values()) replica.gone(null, 'NODE_LOST');
    for (const resolve of this.#asks.values()) resolve(undefined);
    this.#asks.clear();
    this.channel?.close();
  }
}

function viewOf(info: NodeInfo): NodeView {
  return { id: info.id, total: { ...info.resources }, labels: info.labels, gpuIds: info.gpuIds, alive: true };
}

export class RemoteReplica implements ReplicaHandle {
  readonly spec: ReplicaSpec;
  readonly order: ReplicaLaunchOrder;
  readonly #node: RemoteNode;
  pid: number | undefined;
  tcpAddress: string | undefined;
  load: ReplicaLoad | undefined;
  onExit: ReplicaHandle['onExit'];
  #alive = true;
  #ready: PromiseWithResolvers<void> | undefined;
  #stopRequest: { waitLoopS: number; timeoutS: number } | undefined;
  #killRequested = false;
  #killTimer: NodeJS.Timeout | undefined;
  #config: { userConfig: unknown; maxOngoingRequests: number } | undefined;
  readonly #exited = Promise.withResolvers<number | null>();

  constructor(node: RemoteNode, order: ReplicaLaunchOrder) {
    this.#node = node;
    this.order = order;
    // The unix socket is the node's choice: known once the replica reports ready (or is adopted).
    this.spec = { ...order.spec, address: '', nodeId: node.id };
  }

  get alive(): boolean {
    return this.#alive;
  }

  get nodeId(): string {
    return this.#node.id;
  }

  /** A replica the node already runs (reported at registration): ready without a launch. */
  adopt(report: ReplicaReport): void {
    this.pid = report.pid;
    this.tcpAddress = report.tcpAddress;
    this.spec.address = report.spec.address;
    // Its 'ready' may have been lost while the node was away: the report says it.
    if (report.state === 'RUNNING') this.#ready?.resolve();
  }

  /** After the node reconnected: what the head asked that may not have arrived is asked again. */
  resend(): void {
    if (this.#stopRequest) this.#node.send({ t: 'stop', id: this.spec.replicaId, ...this.#stopRequest });
    if (this.#killRequested) this.#node.send({ t: 'kill', id: this.spec.replicaId });
    if (this.#config) this.#node.send({ t: 'reconfigure', id: this.spec.replicaId, ...this.#config });
  }

  start(routes: DeploymentRoute[]): Promise<void> {
    this.#ready = Promise.withResolvers<void>();
    this.#node.send({ t: 'launch', order: this.order, routes });
    return this.#ready.promise;
  }

  onMessage(message: Extract<ToHead, { id: string }>): void {
    switch (message.t) {
      case 'ready':
        this.pid = message.pid;
        this.tcpAddress = message.tcpAddress;
        this.spec.address = message.address;
        this.#ready?.resolve();
        return;
      case 'start-failed':
        this.#ready?.reject(
          new RaylineError(message.nodeLeaving ? 'RL_NODE_LOST' : 'RL_USER_EXCEPTION', message.message),
        );
        return;
      case 'load':
        this.load = { ongoing: message.ongoing, queued: message.queued, atMs: Date.now() };
        return;
      case 'exit':
        this.gone(message.code, message.signal as NodeJS.Signals | null);
        return;
    }
  }

  gone(code: number | null, signal: NodeJS.Signals | 'NODE_LOST' | null): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#node.replicas.delete(this.spec.replicaId);
    this.#ready?.reject(
      signal === 'NODE_LOST'
        ? new RaylineError('RL_NODE_LOST', `node ${this.#node.id} was lost before the replica was ready`)
        : new RaylineError('RL_REPLICA_DIED', `replica process exited with code ${code} before it was ready`),
    );
    clearTimeout(this.#killTimer);
    this.onExit?.(code, signal);
    this.#exited.resolve(code);
  }

  reconfigure(userConfig: unknown, maxOngoingRequests: number): void {
    this.#config = { userConfig, maxOngoingRequests };
    this.#node.send({ t: 'reconfigure', id: this.spec.replicaId, ...this.#config });
  }

  async checkHealth(timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    const answer = await this.#node.ask(this.spec.replicaId, 'health', timeoutMs);
    if (!answer) return { ok: false, message: `health check did not answer within ${timeoutMs / 1000} s` };
    return { ok: answer.ok, message: answer.message ?? '' };
  }

  async metrics(timeoutMs = 2000): Promise<unknown[]> {
    return (await this.#node.ask(this.spec.replicaId, 'metrics', timeoutMs))?.metrics ?? [];
  }

  async stop(waitLoopS: number, timeoutS: number): Promise<void> {
    if (!this.#alive) return;
    this.#stopRequest = { waitLoopS, timeoutS };
    this.#node.send({ t: 'stop', id: this.spec.replicaId, waitLoopS, timeoutS });
    // The node kills it itself after the timeout; this covers a stop that never arrived.
    this.#killTimer = setTimeout(() => this.kill(), (timeoutS + STOP_GRACE_S) * 1000);
    this.#killTimer.unref();
    await this.#exited.promise;
  }

  kill(): void {
    if (!this.#alive) return;
    this.#killRequested = true;
    this.#node.send({ t: 'kill', id: this.spec.replicaId });
  }

  exited(): Promise<number | null> {
    return this.#exited.promise;
  }
}
