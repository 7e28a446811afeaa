/**
 * A head node on one machine: serve controller, HTTP proxy (8000), REST API (8265) and metrics
 * (8080) in this process; replicas as child processes.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import { controllerMetrics, handleMetrics, proxyMetrics } from '../observability/metrics.ts';
import { type HttpOptions, httpOptionsSchema, type ServeConfig } from '../schema/serve-config.ts';
import { ServeController } from './controller/controller.ts';
import type { ApplicationStatus } from './controller/status.ts';
import { LocalNode } from './node/local-node.ts';
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
}

export interface HeadAddresses {
  http: string;
  rest: string;
  metrics: string;
}

export class Head {
  readonly controller: ServeController;
  readonly proxy: HttpProxy;
  readonly rest: FastifyInstance;
  readonly metricsServer: FastifyInstance;
  readonly #node: LocalNode;
  readonly #router: CallRouter;
  readonly #registry = new Registry();
  readonly #options: HeadOptions;
  readonly #http: HttpOptions;
  addresses: HeadAddresses | undefined;

  constructor(options: HeadOptions) {
    this.#options = options;
    const log = options.log;
    this.#http = httpOptionsSchema.parse(options.http ?? {});
    this.#node = new LocalNode(options.output);
    this.#router = new CallRouter();
    trackQueues(this.#router, handleMetrics(this.#registry), 'proxy');
    this.proxy = new HttpProxy({
      http: this.#http,
      router: this.#router,
      log: log.child({ component: 'proxy' }),
      metrics: proxyMetrics(this.#registry),
      nodeId: this.#node.nodeId,
      accessLog: options.accessLog ?? true,
    });
    this.controller = new ServeController({
      node: this.#node,
      log: log.child({ component: 'controller' }),
      metrics: controllerMetrics(this.#registry),
      logLevel: options.logLevel,
      debug: options.debug ?? false,
      baseDir: options.baseDir,
      output: options.output,
      callerQueued: () => this.#router.queuedCounts(),
      publish: (routes, appRoutes) => {
        this.#router.update(routes);
        this.proxy.routes.update(appRoutes);
      },
    });
    this.rest = createRestServer({
      controller: this.controller,
      apply: (config) => this.apply(config),
      log: log.child({ component: 'rest' }),
      token: options.token,
      proxyHealthy: () => this.addresses !== undefined,
    });
    this.metricsServer = Fastify({ logger: false });
    this.metricsServer.get('/metrics', async (_req, reply) => {
      reply.type(this.#registry.contentType);
      return this.metrics();
    });
  }

  /** Prometheus text of this process and every replica, aggregated. */
  async metrics(): Promise<string> {
    this.proxy.refreshGauges();
    const own = await this.#registry.getMetricsAsJSON();
    const replicas = await Promise.all(this.controller.replicaProcesses().map((p) => p.metrics()));
    const all = [own, ...replicas.filter((m) => m.length > 0)] as Parameters<
      typeof AggregatorRegistry.aggregate
    >[0];
    return AggregatorRegistry.aggregate(all).metrics();
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
    this.addresses = { http, rest, metrics };
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
    this.#router.close();
    this.#node.close();
  }
}
