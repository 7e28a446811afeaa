/**
 * A head node: serve controller, HTTP proxy (8000), REST API (8265) and metrics (8080) in this
 * process; replicas as child processes here and, when it listens on the cluster port (6379), on
 * the worker nodes that join it.
 */
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import { controllerMetrics, handleMetrics, proxyMetrics } from '../observability/metrics.ts';
import { type HttpOptions, httpOptionsSchema, type ServeConfig } from '../schema/serve-config.ts';
import { HeadCluster } from './cluster/head-cluster.ts';
import { LocalClusterNode } from './cluster/local-cluster-node.ts';
import { ServeController } from './controller/controller.ts';
import type { ApplicationStatus } from './controller/status.ts';
import { HeadState } from './head-state.ts';
import { detectResources, nodeResources } from './node/detect-resources.ts';
import { LocalNode } from './node/local-node.ts';
import { createMetricsServer, nodeMetrics } from './node/metrics-endpoint.ts';
import type { ResourceSet } from './placement/types.ts';
import { HttpProxy } from './proxy/proxy.ts';
import { createRestServer } from './rest/server.ts';
import { CallRouter } from './router/call-router.ts';
import { trackQueues } from './router/queue-metrics.ts';

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
  token?: string;
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
    this.#router.token = options.token;
    this.#state = options.stateDir ? new HeadState(options.stateDir, log) : undefined;
    trackQueues(this.#router, handleMetrics(this.#registry), 'proxy');
    this.proxy = new HttpProxy({
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
        token: options.token,
        onPublish: (routes, appRoutes) => {
          this.#router.update(routes);
          this.proxy.routes.update(appRoutes);
        },
        proxyHealthy: () => this.addresses !== undefined,
      }),
      log: log.child({ component: 'cluster' }),
      token: options.token,
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
    });
    this.metricsServer = createMetricsServer(this.#registry, () => this.metrics());
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
      o.log.warn(
        { host: dashboardHost },
        'REST API has no token: it deploys code, so it listens on loopback only unless --dashboard-host says otherwise; set RAYLINE_API_TOKEN to close it',
      );
    }
    const http = await this.proxy.listen();
    const rest = await this.rest.listen({ host: dashboardHost, port: o.dashboardPort ?? 8265 });
    const metrics = await this.metricsServer.listen({ host: this.#http.host, port: o.metricsPort ?? 8080 });
    const cluster = o.cluster ? await this.cluster.listen(o.cluster.host, o.cluster.port) : undefined;
    this.addresses = { http, rest, metrics, ...(cluster ? { cluster } : {}) };
    o.log.info(this.addresses, 'head started');
    return this.addresses;
  }

  apply(config: ServeConfig): void {
    if (JSON.stringify(config.http_options) !== JSON.stringify(this.#http)) {
      this.#options.log.warn(
        { configured: config.http_options, running: this.#http },
        'http_options are fixed when the head starts (rayline start, serve run); the running proxy keeps its own',
      );
    }
    this.controller.apply(config);
    this.#state?.saveConfig(config);
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

  /** Drains and stops every replica, then closes the servers. */
  async stop(): Promise<void> {
    await this.controller.shutdown();
    await Promise.all([this.proxy.close(), this.rest.close(), this.metricsServer.close()]);
    this.cluster.close();
    this.#router.close();
    this.#node.close();
  }
}
