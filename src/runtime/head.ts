/**
 * A head node: serve controller, HTTP proxy (8000), REST API (8265) and metrics (8080) in this
 * process; replicas as child processes here and, when it listens on the cluster port (6379), on
 * the worker nodes that join it.
 */

import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { RaylineError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import {
  connectionMetrics,
  controllerMetrics,
  handleMetrics,
  proxyMetrics,
} from '../observability/metrics.ts';
import { type HttpOptions, httpOptionsSchema, type ServeConfig } from '../schema/serve-config.ts';
import { HeadCluster } from './cluster/head-cluster.ts';
import { LocalClusterNode } from './cluster/local-cluster-node.ts';
import { replicaCredential } from './cluster/token.ts';
import { ServeController } from './controller/controller.ts';
import type { ApplicationStatus } from './controller/status.ts';
import { HeadState } from './head-state.ts';
import { detectResources, nodeResources } from './node/detect-resources.ts';
import { LocalNode } from './node/local-node.ts';
import { createMetricsServer, nodeMetrics } from './node/metrics-endpoint.ts';
import { LEAVING_STOP_TIMEOUT_S, LEAVING_STOP_WAIT_LOOP_S } from './node/replica-process.ts';
import type { ResourceSet } from './placement/types.ts';
import { HAND_OFF_MIN_WITH_REPLICAS_MS, HAND_OFF_TIMEOUT_MS, HttpProxy } from './proxy/proxy.ts';
import { createRestServer } from './rest/server.ts';
import { CallRouter } from './router/call-router.ts';
import { trackQueues } from './router/queue-metrics.ts';
import { PreAuthGate, type PreAuthLimits, preAuthDefaults } from './transport/preauth-gate.ts';

export interface HeadOptions {
  log: Logger;
  /** Replica and builder log lines are written here. */
  output: NodeJS.WritableStream;
  logLevel: string;
  http?: Partial<HttpOptions>;
  /** REST API listen address; defaults to loopback unless a token closes the API. */
  dashboardHost?: string;
  dashboardPort?: number;
  metricsPort?: number;
  /** The admin token: REST API and cluster join. Replicas get a credential derived from it. */
  token?: string;
  /** Without a token, bind the REST API and cluster port beyond loopback anyway (--allow-unauthenticated). */
  allowUnauthenticated?: boolean;
  /** Limits on unauthenticated connections per port (tests lower them). */
  preAuth?: Partial<Record<'cluster' | 'rest' | 'proxy' | 'metrics', Partial<PreAuthLimits>>>;
  /** Build processes at once; default the machine's cores. */
  buildConcurrency?: number;
  accessLog?: boolean;
  baseDir: string;
  debug?: boolean;
  nodeId?: string;
  /**
   * What this node offers to replicas. Undefined for a single-process `serve run`: CPU and memory
   * are then not limits (a laptop runs what it runs), GPUs are what the machine shows.
   */
  resources?: ResourceSet;
  labels?: Record<string, string>;
  /** Listen for worker nodes; replicas here then also listen on TCP at `ip`. */
  cluster?: { host: string; port: number; ip: string };
  /** Applied config and known nodes are kept here, so that a restarted head recovers them. */
  stateDir?: string;
}

export interface HeadAddresses {
  http: string;
  rest: string;
  metrics: string;
  /** The cluster port workers join, when it listens. */
  cluster?: string;
}

/** How long a restarted head waits for the workers it knew to report their replicas. */
const RECOVERY_WAIT_MS = 15_000;

/** `serve run` on one machine: logical CPU and memory never hold a replica back. */
const UNLIMITED = 1e12;

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/** `http://host:port` of what a server really bound (fastify reports 127.0.0.1 for 0.0.0.0). */
function boundUrl(address: AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

export class Head {
  readonly controller: ServeController;
  readonly proxy: HttpProxy;
  readonly rest: FastifyInstance;
  readonly metricsServer: FastifyInstance;
  readonly cluster: HeadCluster;
  readonly #node: LocalNode;
  readonly #router: CallRouter;
  readonly #state: HeadState | undefined;
  readonly #registry = new Registry();
  readonly #options: HeadOptions;
  readonly #http: HttpOptions;
  addresses: HeadAddresses | undefined;

  constructor(options: HeadOptions) {
    this.#options = options;
    const log = options.log;
    this.#http = httpOptionsSchema.parse(options.http ?? {});
    this.#node = new LocalNode(options.output, options.nodeId);
    this.#router = new CallRouter();
    this.#router.nodeId = this.#node.nodeId;
    // Replicas, and whoever calls them, hold a credential derived from the admin token, never the token.
    const credential = options.token === undefined ? undefined : replicaCredential(options.token);
    this.#router.token = credential;
    this.#state = options.stateDir ? new HeadState(options.stateDir, log) : undefined;
    trackQueues(this.#router, handleMetrics(this.#registry), 'proxy');
    const refused = connectionMetrics(this.#registry).preAuthRefused;
    const gate = (port: 'cluster' | 'rest' | 'proxy' | 'metrics') =>
      new PreAuthGate({
        port,
        limits: { ...preAuthDefaults[port], ...options.preAuth?.[port] },
        log: log.child({ component: 'connections' }),
        onRefused: (reason) => refused.inc({ port, reason }),
      });
    this.proxy = new HttpProxy({
      gate: gate('proxy'),
      http: this.#http,
      router: this.#router,
      log: log.child({ component: 'proxy' }),
      metrics: proxyMetrics(this.#registry),
      nodeId: this.#node.nodeId,
      accessLog: options.accessLog ?? true,
    });
    const detected = detectResources();
    const { total, gpuIds } = nodeResources(
      options.resources ?? { CPU: UNLIMITED, memory: UNLIMITED },
      detected,
    );
    const recovered = this.#state?.load();
    this.cluster = new HeadCluster({
      local: new LocalClusterNode({
        node: this.#node,
        ip: options.cluster?.ip ?? '127.0.0.1',
        resources: total,
        gpuIds,
        labels: options.labels ?? {},
        tcp: options.cluster !== undefined,
        token: credential,
        onPublish: (routes, appRoutes) => {
          this.#router.update(routes);
          this.proxy.routes.update(appRoutes);
        },
        proxyHealthy: () => this.addresses !== undefined,
      }),
      log: log.child({ component: 'cluster' }),
      token: options.token,
      gate: gate('cluster'),
      onChange: () => {
        // While recovering, the nodes not back yet are still expected after another restart.
        const expected = this.controller?.recovering ? (recovered?.nodeIds ?? []) : [];
        this.#state?.saveNodes([...new Set([...expected, ...this.cluster.workers.keys()])]);
        this.controller.changed();
      },
    });
    this.controller = new ServeController({
      cluster: this.cluster,
      log: log.child({ component: 'controller' }),
      metrics: controllerMetrics(this.#registry),
      logLevel: options.logLevel,
      debug: options.debug ?? false,
      baseDir: options.baseDir,
      output: options.output,
      callerQueued: () => this.#router.queuedCounts(),
      ...(options.buildConcurrency ? { buildConcurrency: options.buildConcurrency } : {}),
      ...(recovered && recovered.nodeIds.length > 0
        ? { recovery: { nodeIds: recovered.nodeIds, deadlineMs: Date.now() + RECOVERY_WAIT_MS } }
        : {}),
    });
    if (recovered?.config) {
      log.info({ stateDir: options.stateDir }, 'restoring the applied config from the state directory');
      this.controller.apply(recovered.config);
    }
    this.rest = createRestServer({
      controller: this.controller,
      apply: (config) => this.apply(config),
      deleteAll: () => this.deleteAll(),
      log: log.child({ component: 'rest' }),
      token: options.token,
      gate: gate('rest'),
    });
    this.metricsServer = createMetricsServer(this.#registry, () => this.metrics(), gate('metrics'));
  }

  /** Prometheus text of this process and every replica, aggregated. */
  async metrics(): Promise<string> {
    this.proxy.refreshGauges();
    // Replicas on workers are scraped at their own node's metrics port, as in Ray.
    return nodeMetrics(this.#registry, this.#node.replicas.values());
  }

  async start(): Promise<HeadAddresses> {
    const o = this.#options;
    const dashboardHost = o.dashboardHost ?? (o.token ? '0.0.0.0' : '127.0.0.1');
    if (!o.token) {
      // Without a token the REST API deploys anyone's code and the cluster port admits any node.
      const exposed = [
        ...(isLoopback(dashboardHost) ? [] : [`the REST API on ${dashboardHost} (--dashboard-host)`]),
        ...(o.cluster && !isLoopback(o.cluster.host)
          ? [`the cluster port on ${o.cluster.host} (--node-ip-address)`]
          : []),
      ];
      if (exposed.length > 0 && !o.allowUnauthenticated) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          `this head has no token (RAYLINE_API_TOKEN or --token) and would put ${exposed.join(' and ')} beyond loopback, where anyone who reaches it can deploy code; set a token, bind loopback, or pass --allow-unauthenticated to expose it anyway`,
        );
      }
      if (exposed.length > 0) {
        o.log.warn(
          { exposed },
          'no token and --allow-unauthenticated: the REST API or cluster port is open to anyone who reaches it',
        );
      } else {
        o.log.warn(
          { host: dashboardHost },
          'REST API has no token: it deploys code, so it listens on loopback only; set RAYLINE_API_TOKEN to open it to other machines',
        );
      }
    }
    await this.proxy.listen();
    await this.rest.listen({ host: dashboardHost, port: o.dashboardPort ?? 8265 });
    await this.metricsServer.listen({ host: this.#http.host, port: o.metricsPort ?? 8080 });
    const cluster = o.cluster ? await this.cluster.listen(o.cluster.host, o.cluster.port) : undefined;
    this.addresses = {
      http: boundUrl(this.proxy.server.server.address()),
      rest: boundUrl(this.rest.server.address()),
      metrics: boundUrl(this.metricsServer.server.address()),
      ...(cluster ? { cluster } : {}),
    };
    o.log.info(this.addresses, 'head started');
    return this.addresses;
  }

  /**
   * Applies a validated config in steps: plan the change (whatever can fail fails here), store it,
   * then commit it to the controller. A failure before the commit leaves the previous config both
   * stored and serving.
   */
  apply(config: ServeConfig): void {
    const plan = this.controller.plan(config);
    const previous = this.controller.config;
    this.#state?.saveConfig(config);
    try {
      this.controller.commit(plan);
    } catch (error) {
      this.#state?.saveConfig(previous);
      throw error;
    }
    if (JSON.stringify(config.http_options) !== JSON.stringify(this.#http)) {
      this.#options.log.warn(
        { configured: config.http_options, running: this.#http },
        'http_options are fixed when the head starts (rayline start, serve run); the running proxy keeps its own',
      );
    }
  }

  /** Deletes every application (REST DELETE, `serve shutdown`). */
  deleteAll(): void {
    this.controller.deleteAll();
    this.#state?.saveConfig(undefined);
  }

  /** Resolves once every application has one of the given statuses (or rejects at the timeout). */
  async waitForApplications(statuses: ApplicationStatus[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const apps = Object.values(this.controller.applicationDetails());
      if (apps.every((a) => statuses.includes(a.status))) return;
      if (Date.now() > deadline) {
        throw new Error(
          `applications not ${statuses.join('/')} after ${timeoutMs} ms: ${apps.map((a) => `${a.name}=${a.status}`).join(', ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * A cluster head leaving while its cluster stays (SIGTERM when its pod is deleted or restarted):
   * nothing is deleted. Its proxy hands its clients off, this node's replicas drain, the servers
   * close. Workers keep serving with the routes they have and report their replicas to the next
   * head, which adopts them.
   */
  async leave(): Promise<void> {
    this.controller.detach();
    const replicas = [...this.#node.replicas.values()];
    await this.proxy.handOff(HAND_OFF_TIMEOUT_MS, replicas.length > 0 ? HAND_OFF_MIN_WITH_REPLICAS_MS : 0);
    await Promise.all(replicas.map((r) => r.stop(LEAVING_STOP_WAIT_LOOP_S, LEAVING_STOP_TIMEOUT_S)));
    await this.#close();
  }

  /** Drains and stops every replica, then closes the servers. */
  async stop(): Promise<void> {
    // Requests arriving from now on are answered 503, not 404 as the routes empty.
    this.proxy.drain();
    await this.controller.shutdown();
    await this.#close();
  }

  async #close(): Promise<void> {
    await Promise.all([this.proxy.close(), this.rest.close(), this.metricsServer.close()]);
    this.cluster.close();
    this.#router.close();
    this.#node.close();
  }
}
