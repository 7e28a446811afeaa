/**
 * A worker node (`rayline start --address HEAD:6379`): joins the head's cluster, runs the replica
 * processes the head places here, serves HTTP with the routing tables the head pushes, and keeps
 * serving with its last tables while the head is away. It reconnects until the head is back and
 * then reports the replicas it runs, which the head adopts.
 */
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import { connectionMetrics, handleMetrics, proxyMetrics } from '../observability/metrics.ts';
import { type HttpOptions, httpOptionsSchema } from '../schema/serve-config.ts';
import { Channel, parseHostPort } from './cluster/channel.ts';
import type { NodeInfo, ReplicaLaunchOrder, ReplicaReport, ToHead, ToNode } from './cluster/protocol.ts';
import { replicaCredential } from './cluster/token.ts';
import { detectResources, nodeResources } from './node/detect-resources.ts';
import { LocalNode } from './node/local-node.ts';
import { createMetricsServer, nodeMetrics } from './node/metrics-endpoint.ts';
import {
  LEAVING_STOP_TIMEOUT_S,
  LEAVING_STOP_WAIT_LOOP_S,
  type ReplicaProcess,
} from './node/replica-process.ts';
import type { ResourceSet } from './placement/types.ts';
import { HAND_OFF_MIN_WITH_REPLICAS_MS, HAND_OFF_TIMEOUT_MS, HttpProxy } from './proxy/proxy.ts';
import { CallRouter } from './router/call-router.ts';
import { trackQueues } from './router/queue-metrics.ts';
import { PreAuthGate, preAuthDefaults } from './transport/preauth-gate.ts';

export interface WorkerOptions {
  log: Logger;
  output: NodeJS.WritableStream;
  headAddress: string;
  token?: string;
  nodeId: string;
  /** The address the head and other nodes reach this node at. */
  ip: string;
  /** Declared resources; what is not declared is detected. */
  resources: ResourceSet;
  labels: Record<string, string>;
  group?: string;
  http?: Partial<HttpOptions>;
  metricsPort?: number;
  accessLog?: boolean;
  /** The head refused this node (wrong token): retrying cannot help. */
  onRefused?(reason: string): void;
}

interface Hosted {
  order: ReplicaLaunchOrder;
  process: ReplicaProcess;
  ready: boolean;
  sentLoadAtMs: number;
}

const HEARTBEAT_MS = 1000;
const RECONNECT_MAX_MS = 5000;
const CONNECT_TIMEOUT_MS = 3000;

export class Worker {
  readonly proxy: HttpProxy;
  readonly metricsServer: FastifyInstance;
  readonly #options: WorkerOptions;
  readonly #node: LocalNode;
  readonly #router = new CallRouter();
  readonly #registry = new Registry();
  readonly #hosted = new Map<string, Hosted>();
  readonly #info: NodeInfo;
  #channel: Channel<ToNode, ToHead> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #reconnectMs = 250;
  #stopping = false;
  #proxyAddress: string | undefined;
  readonly #credential: string | undefined;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#node = new LocalNode(options.output, options.nodeId);
    this.#router.nodeId = options.nodeId;
    // Replicas and their callers hold the replica credential; the admin token stays in this process.
    this.#credential = options.token === undefined ? undefined : replicaCredential(options.token);
    this.#router.token = this.#credential;
    trackQueues(this.#router, handleMetrics(this.#registry), 'proxy');
    const refused = connectionMetrics(this.#registry).preAuthRefused;
    const gate = (port: 'proxy' | 'metrics') =>
      new PreAuthGate({
        port,
        limits: preAuthDefaults[port],
        log: options.log.child({ component: 'connections' }),
        onRefused: (reason) => refused.inc({ port, reason }),
      });
    this.proxy = new HttpProxy({
      gate: gate('proxy'),
      http: httpOptionsSchema.parse(options.http ?? {}),
      router: this.#router,
      log: options.log.child({ component: 'proxy' }),
      metrics: proxyMetrics(this.#registry),
      nodeId: options.nodeId,
      accessLog: options.accessLog ?? true,
    });
    this.metricsServer = createMetricsServer(
      this.#registry,
      () => {
        this.proxy.refreshGauges();
        return nodeMetrics(this.#registry, this.#node.replicas.values());
      },
      gate('metrics'),
    );
    const { total, gpuIds } = nodeResources(options.resources, detectResources());
    this.#info = {
      id: options.nodeId,
      ip: options.ip,
      resources: total,
      gpuIds,
      labels: options.labels,
      ...(options.group ? { group: options.group } : {}),
    };
  }

  async start(): Promise<{ http: string; metrics: string }> {
    const http = await this.proxy.listen();
    // The host the proxy was told, not the address it reports: for 0.0.0.0 that is 127.0.0.1, and
    // a pod's probes, which ask the metrics port from outside, were refused.
    const metrics = await this.metricsServer.listen({
      host: this.proxy.host,
      port: this.#options.metricsPort ?? 8080,
    });
    this.#proxyAddress = `${this.#options.ip}:${new URL(http).port}`;
    this.#info.proxy = this.#proxyAddress;
    this.#connect();
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#options.log.info({ node: this.#info, http, metrics }, 'worker node started');
    return { http, metrics };
  }

  #connect(): void {
    if (this.#stopping) return;
    const log = this.#options.log;
    const socket = net.connect(parseHostPort(this.#options.headAddress));
    // A restarted head pod has a new address: until DNS says so, a connect to the old one gets no
    // answer at all, and the kernel would give up only after about two minutes.
    socket.setTimeout(CONNECT_TIMEOUT_MS, () =>
      socket.destroy(new Error('connecting to the head timed out')),
    );
    const channel = new Channel<ToNode, ToHead>(socket);
    socket.once('connect', () => {
      socket.setTimeout(0);
      // The token goes alone first: the head holds only a few bytes for a peer it does not know.
      channel.send({ t: 'auth', token: this.#options.token ?? '' });
      channel.send({
        t: 'hello',
        token: this.#options.token ?? '',
        node: this.#info,
        replicas: this.#reports(),
      });
      // Whatever happens from now on follows the hello on this connection, in order: a replica
      // that becomes ready or exits meanwhile is reported, not lost between snapshot and welcome.
      this.#channel = channel;
    });
    channel.onMessage = (message) => this.#onMessage(message);
    channel.onClose = (error) => {
      if (this.#channel === channel) {
        this.#channel = undefined;
        log.warn({ head: this.#options.headAddress }, 'lost the head; serving with the last routing tables');
      } else if (error) {
        log.debug({ err: error }, 'head not reachable');
      }
      if (this.#stopping) return;
      const delay = this.#reconnectMs;
      this.#reconnectMs = Math.min(this.#reconnectMs * 2, RECONNECT_MAX_MS);
      setTimeout(() => this.#connect(), delay).unref();
    };
  }

  #reports(): ReplicaReport[] {
    return [...this.#hosted.values()]
      .filter((h) => h.process.alive)
      .map((h) => ({
        ...h.order,
        spec: h.process.spec,
        state: h.ready ? 'RUNNING' : 'STARTING',
        pid: h.process.pid,
        tcpAddress: h.process.tcpAddress,
      }));
  }

  #send(message: ToHead): void {
    this.#channel?.send(message);
  }

  #beat(): void {
    if (!this.#channel) return;
    this.#send({ t: 'heartbeat', proxyHealthy: this.#proxyAddress !== undefined });
    for (const [id, h] of this.#hosted) {
      const load = h.process.load;
      if (!load || load.atMs === h.sentLoadAtMs) continue;
      h.sentLoadAtMs = load.atMs;
      this.#send({ t: 'load', id, ongoing: load.ongoing, queued: load.queued });
    }
  }

  #onMessage(message: ToNode): void {
    switch (message.t) {
      case 'welcome':
        this.#reconnectMs = 250;
        this.#options.log.info({ head: this.#options.headAddress }, 'joined the cluster');
        this.#beat();
        return;
      case 'refused':
        if (message.retry) {
          // The head closes this connection; the reconnect loop asks again with backoff.
          this.#options.log.warn({ reason: message.reason }, 'the head refused this node for now');
          this.#channel = undefined;
          return;
        }
        this.#options.log.error({ reason: message.reason }, 'the head refused this node');
        this.#stopping = true;
        this.#options.onRefused?.(message.reason);
        return;
      case 'routes':
        this.#router.update(message.routes);
        this.#node.publish(message.routes);
        this.proxy.routes.update(message.appRoutes);
        return;
      case 'launch':
        this.#launch(message.order, message.routes);
        return;
      case 'stop': {
        const h = this.#hosted.get(message.id);
        if (h) h.process.stop(message.waitLoopS, message.timeoutS);
        else this.#send({ t: 'exit', id: message.id, code: null, signal: null }); // already gone
        return;
      }
      case 'kill': {
        const h = this.#hosted.get(message.id);
        if (h) h.process.kill();
        else this.#send({ t: 'exit', id: message.id, code: null, signal: null });
        return;
      }
      case 'reconfigure':
        this.#hosted.get(message.id)?.process.reconfigure(message.userConfig, message.maxOngoingRequests);
        return;
      case 'ask':
        this.#answer(message);
        return;
    }
  }

  #launch(order: ReplicaLaunchOrder, routes: Parameters<ReplicaProcess['start']>[0]): void {
    if (this.#stopping) {
      const message = `node ${this.#info.id} is shutting down`;
      this.#send({ t: 'start-failed', id: order.spec.replicaId, message, nodeLeaving: true });
      return;
    }
    const token = this.#credential;
    const process = this.#node.launch({
      spec: {
        ...order.spec,
        nodeId: this.#info.id,
        tcpHost: this.#info.ip,
        ...(token !== undefined ? { clusterToken: token } : {}),
      },
      env: order.env,
      cwd: order.cwd,
    });
    const id = order.spec.replicaId;
    const hosted: Hosted = { order, process, ready: false, sentLoadAtMs: 0 };
    this.#hosted.set(id, hosted);
    process.onExit = (code, signal) => {
      this.#hosted.delete(id);
      this.#send({ t: 'exit', id, code, signal });
    };
    process.start(routes).then(
      () => {
        hosted.ready = true;
        this.#send({
          t: 'ready',
          id,
          address: process.spec.address,
          tcpAddress: process.tcpAddress,
          pid: process.pid,
        });
      },
      (error: Error) => this.#send({ t: 'start-failed', id, message: error.message }),
    );
  }

  async #answer(ask: Extract<ToNode, { t: 'ask' }>): Promise<void> {
    const h = this.#hosted.get(ask.id);
    if (!h)
      return this.#send({ t: 'answer', requestId: ask.requestId, ok: false, message: 'no such replica' });
    if (ask.what === 'health') {
      const { ok, message } = await h.process.checkHealth(ask.timeoutMs);
      this.#send({ t: 'answer', requestId: ask.requestId, ok, message });
    } else {
      const metrics = await h.process.metrics(ask.timeoutMs);
      this.#send({ t: 'answer', requestId: ask.requestId, ok: true, metrics });
    }
  }

  /**
   * Leaves the cluster first (nothing new is placed here), hands its HTTP clients off to other nodes
   * (requests on open connections are still served, never answered 503), then drains every replica
   * and closes.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#heartbeat);
    this.#send({ t: 'leaving' });
    // Clients first: their connections move to other nodes while this node's replicas still answer.
    await this.proxy.handOff(HAND_OFF_TIMEOUT_MS, this.#hosted.size > 0 ? HAND_OFF_MIN_WITH_REPLICAS_MS : 0);
    await Promise.all(
      [...this.#hosted.values()].map((h) => h.process.stop(LEAVING_STOP_WAIT_LOOP_S, LEAVING_STOP_TIMEOUT_S)),
    );
    this.#channel?.close();
    await Promise.all([this.proxy.close(), this.metricsServer.close()]);
    this.#router.close();
    this.#node.close();
  }
}
