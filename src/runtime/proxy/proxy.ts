/**
 * The HTTP proxy: matches a request to an application by route prefix, hands it to the router of
 * that application's ingress deployment, and writes the replica's answer (whole or streamed) back.
 * Enforces the request timeout (408), the body limit (413) and cancels work when a client leaves.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type ErrorCode, ErrorCodes, RaylineError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ProxyMetrics } from '../../observability/metrics.ts';
import type { HttpOptions } from '../../schema/serve-config.ts';
import type { CallRouter } from '../router/call-router.ts';
import { DeploymentGoneError, type ResultSink, RoutedCall } from '../router/deployment-router.ts';
import type { CallMeta } from '../router/handle-port.ts';
import { promptOfBody } from '../router/prefix-affinity.ts';
import type { WireError } from '../router/wire-error.ts';
import { type Frame, FrameKind } from '../transport/frame.ts';
import { gateHttpServer, markAuthenticated, type PreAuthGate } from '../transport/preauth-gate.ts';
import { RouteTable, type RouteTarget, routingPath } from './route-table.ts';

/** How long a leaving node's proxy waits for its clients' connections to move elsewhere. */
export const HAND_OFF_TIMEOUT_MS = 15_000;
/** After this long handing off, a connection with no request in flight is idle and is closed. */
const HAND_OFF_IDLE_MS = 1000;
/**
 * A leaving node that runs replicas keeps them this long at least: the nodes leaving with it (a
 * whole cluster deleted after an upgrade) still route what their clients sent in their own first
 * second of handing off, and some of it calls replicas here.
 */
export const HAND_OFF_MIN_WITH_REPLICAS_MS = 2 * HAND_OFF_IDLE_MS;

export interface ProxyOptions {
  http: HttpOptions;
  router: CallRouter;
  log: Logger;
  metrics: ProxyMetrics;
  nodeId: string;
  accessLog: boolean;
  /** Bounds connections that have not sent a whole request yet. */
  gate?: PreAuthGate;
}

const EMPTY = Buffer.alloc(0);

function flattenHeaders(headers: FastifyRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function errorBody(code: ErrorCode | string, message: string, name?: string, routes?: string[]): string {
  return JSON.stringify({ error: name ?? code, code, message, routes });
}

/** One HTTP request in flight: the sink the router reports to, and the bookkeeping around it. */
class ProxyCall implements ResultSink {
  readonly #res: ServerResponse;
  readonly #proxy: HttpProxy;
  #route: RouteTarget;
  readonly #method: string;
  /** Routed afresh once already: the app's ingress changed under this request. */
  #rerouted = false;
  readonly #started = performance.now();
  routed: RoutedCall | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Chunks written while the client's socket was full: credited together on 'drain'. */
  #unflushed = 0;
  finished = false;

  readonly path: string;
  readonly meta: CallMeta;
  readonly body: Buffer;

  constructor(
    res: ServerResponse,
    proxy: HttpProxy,
    route: RouteTarget,
    method: string,
    path: string,
    meta: CallMeta,
    body: Buffer,
  ) {
    this.path = path;
    this.meta = meta;
    this.body = body;
    this.#res = res;
    this.#proxy = proxy;
    this.#route = route;
    this.#method = method;
  }

  onFrame(frame: Frame): void {
    const res = this.#res;
    const meta = frame.meta as { st?: number; hd?: Record<string, string> } | undefined;
    switch (frame.kind) {
      case FrameKind.Reply:
        res.writeHead(meta?.st ?? 200, meta?.hd);
        res.end(frame.payload);
        this.#done(meta?.st ?? 200);
        return;
      case FrameKind.StreamStart:
        res.writeHead(meta?.st ?? 200, { ...meta?.hd, 'cache-control': 'no-cache' });
        res.flushHeaders();
        return;
      case FrameKind.Chunk:
        // Credit goes back only once the client's socket took the chunk: a slow client slows the replica.
        if (res.write(frame.payload) && this.#unflushed === 0) {
          this.routed?.consumed();
        } else if (this.#unflushed++ === 0) {
          res.once('drain', () => {
            this.routed?.consumed(this.#unflushed);
            this.#unflushed = 0;
          });
        }
        return;
      case FrameKind.End:
        res.end();
        this.#done(res.statusCode);
        return;
      case FrameKind.Error: {
        const wire = frame.meta as WireError;
        const status = wire.status ?? ErrorCodes[wire.code] ?? 500;
        const message = wire.stack ?? wire.message;
        this.fail(status, wire.code, message, wire.name);
        return;
      }
    }
  }

  onError(error: RaylineError): void {
    // The ingress deployment went away before this request started (an update replaced it): the
    // route's new ingress takes it.
    if (error instanceof DeploymentGoneError && !this.#rerouted && !this.finished) {
      const route = this.#proxy.routes.match(this.path);
      if (route) {
        this.#rerouted = true;
        this.#route = route;
        this.#proxy.submit(this, route);
        return;
      }
    }
    this.fail(error.statusCode, error.code, error.message, error.name);
  }

  fail(status: number, code: string, message: string, name?: string): void {
    if (this.finished) return;
    const res = this.#res;
    if (res.headersSent) {
      // Mid-stream: the only honest signal left is to cut the response short.
      res.destroy();
      this.#done(status);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(errorBody(code, message, name));
    this.#done(status, code);
  }

  /** The client went away or the timeout fired: stop the work downstream. */
  abandon(): void {
    if (this.finished) return;
    this.routed?.cancel();
    this.#done(499, 'RL_CANCELLED');
  }

  #done(status: number, errorCode?: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.#proxy.record(this.#route, this.#method, status, performance.now() - this.#started, errorCode);
  }
}

export class HttpProxy {
  readonly routes = new RouteTable();
  readonly server: FastifyInstance;
  readonly #options: ProxyOptions;
  readonly #ongoing;
  readonly #labels = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void } }>();
  #ongoingCount = 0;
  /** Request bytes held now (bodies being read or waiting for their answer), and the most ever held. */
  #bufferedBytes = 0;
  #peakBufferedBytes = 0;
  /** The response of each request in flight, so that a body's bytes are released when it ends. */
  readonly #responses = new WeakMap<IncomingMessage, ServerResponse>();
  #draining = false;
  /** Set by handOff(): the node is leaving while the cluster serves on. */
  #handingOff = false;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#ongoing = options.metrics.ongoing.labels({ node_id: options.nodeId });
    this.#ongoing.set(0);
    const http = options.http;
    this.server = Fastify({
      bodyLimit: http.body_limit_bytes,
      keepAliveTimeout: http.keep_alive_timeout_s * 1000,
      logger: false,
      return503OnClosing: true,
    });
    const server = this.server;
    // Before fastify's own listener: its routes may answer synchronously, and the keep-alive choice
    // below must be made before anything is written.
    server.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      // A public port: a connection is past its pre-auth bounds once a whole request head arrived.
      markAuthenticated(req);
      this.#responses.set(req, res);
      // Answered with `Connection: close`, so that a keep-alive client moves to another node.
      if (this.#handingOff) res.shouldKeepAlive = false;
    });
    if (options.gate) gateHttpServer(server.server, options.gate);
    server.removeAllContentTypeParsers();
    server.addContentTypeParser('*', (req, payload, done) => this.#readBody(req.raw, payload, done));
    server.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _req, reply) => {
      const status = error.statusCode ?? 500;
      const code =
        error instanceof RaylineError
          ? error.code
          : status === 413
            ? 'RL_BODY_TOO_LARGE'
            : status === 415
              ? 'RL_UNSUPPORTED_MEDIA_TYPE'
              : status === 400
                ? 'RL_BAD_REQUEST'
                : 'RL_INTERNAL';
      const message =
        status === 413
          ? `request body exceeds http_options.body_limit_bytes (${http.body_limit_bytes} bytes)`
          : error.message;
      // The body may be partly unread: this connection ends with the answer.
      if (status === 413) reply.header('connection', 'close');
      if (status === 503) reply.header('retry-after', '1');
      reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message));
    });
    server.get('/-/healthz', (_req, reply) => {
      if (this.#draining || this.#handingOff) reply.code(503).send('draining');
      else if (this.routes.size === 0) reply.code(503).send('no applications are routable yet');
      else reply.send('success');
    });
    server.get('/-/routes', (_req, reply) => {
      reply.send(this.routes.toJSON());
    });
    server.all('*', (req, reply) => this.#handle(req, reply));
  }

  /** Request bytes held now, and the most held at once since the proxy started. */
  get bufferedBytes(): { now: number; peak: number } {
    return { now: this.#bufferedBytes, peak: this.#peakBufferedBytes };
  }

  /**
   * Reads a request body within two limits: the request's own (`body_limit_bytes`, 413) and what
   * all requests together may hold (`buffered_body_limit_bytes`, 503 with Retry-After). A body
   * with a content-length reserves its size before a byte is read; its bytes are released when its
   * response ends.
   */
  #readBody(
    req: IncomingMessage,
    payload: NodeJS.ReadableStream,
    done: (error: Error | null, body?: Buffer) => void,
  ): void {
    const http = this.#options.http;
    const limit = http.body_limit_bytes;
    const cap = http.buffered_body_limit_bytes;
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    let reserved = 0;
    let finished = false;
    const release = () => {
      this.#bufferedBytes -= reserved;
      reserved = 0;
    };
    const reserve = (n: number): boolean => {
      if (this.#bufferedBytes + n > cap) return false;
      this.#bufferedBytes += n;
      reserved += n;
      if (this.#bufferedBytes > this.#peakBufferedBytes) this.#peakBufferedBytes = this.#bufferedBytes;
      return true;
    };
    const tooLarge = () =>
      new RaylineError(
        'RL_BODY_TOO_LARGE',
        `request body exceeds http_options.body_limit_bytes (${limit} bytes)`,
      );
    const busy = () =>
      new RaylineError(
        'RL_UNAVAILABLE',
        `the proxy holds its limit of request bodies (http_options.buffered_body_limit_bytes, ${cap} bytes); retry shortly`,
      );
    const fail = (error: RaylineError) => {
      if (finished) return;
      finished = true;
      release();
      payload.removeAllListeners('data');
      // Over the proxy's total: the rest of this body (within its own limit) is read and dropped,
      // so the client can finish sending and read its 503. Over its own limit: the connection
      // closes after the 413 instead of reading what may be endless.
      if (error.code === 'RL_UNAVAILABLE') payload.resume();
      else payload.pause();
      done(error);
    };
    if (declared > limit) {
      fail(tooLarge());
      return;
    }
    if (declared > 0 && !reserve(declared)) {
      fail(busy());
      return;
    }
    // With a length the body is read straight into one buffer: no chunks and copy held side by side.
    const whole = declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    payload.on('data', (chunk: Buffer) => {
      if (received + chunk.length > limit) return fail(tooLarge());
      if (received + chunk.length > reserved && !reserve(received + chunk.length - reserved))
        return fail(busy());
      if (!whole) chunks.push(chunk);
      else if (received + chunk.length <= whole.length) whole.set(chunk, received);
      else return fail(new RaylineError('RL_BAD_REQUEST', 'request body longer than its content-length'));
      received += chunk.length;
    });
    payload.once('end', () => {
      if (finished) return;
      finished = true;
      // More was reserved than came (a short body): keep only what is held.
      if (reserved > received) {
        this.#bufferedBytes -= reserved - received;
        reserved = received;
      }
      const res = this.#responses.get(req);
      if (res && !res.writableFinished && !res.destroyed) res.once('close', release);
      else release();
      if (whole) done(null, received === whole.length ? whole : whole.subarray(0, received));
      else done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
    });
    payload.once('error', (error: Error) =>
      fail(new RaylineError('RL_CANCELLED', `reading the request body failed: ${error.message}`)),
    );
    payload.once('close', () => {
      if (!finished) fail(new RaylineError('RL_CANCELLED', 'the client closed the connection mid-body'));
    });
  }

  /** From now on requests are answered 503 (the node is shutting down), not routed. */
  drain(): void {
    this.#draining = true;
  }

  /**
   * This node leaves while the cluster serves on (its pod is being deleted): health checks fail so
   * that load balancers stop sending, requests still arriving on open connections are routed as
   * before and answered with `Connection: close`, so that keep-alive clients reconnect to another
   * node instead of racing a closing socket. A connection that carried no request for a second is
   * idle, not busy, and is closed. Resolves once no connection is left and `minMs` have passed, or
   * after `timeoutMs`.
   */
  async handOff(timeoutMs: number, minMs = 0): Promise<void> {
    this.#handingOff = true;
    const started = Date.now();
    // The server counts its connections itself: nothing per connection on the request path.
    const connections = () =>
      new Promise<number>((resolve) =>
        this.server.server.getConnections((_error, count) => resolve(count ?? 0)),
      );
    for (;;) {
      const elapsedMs = Date.now() - started;
      if (elapsedMs >= timeoutMs) return;
      if (elapsedMs >= minMs && (await connections()) === 0) return;
      if (elapsedMs >= HAND_OFF_IDLE_MS) this.server.server.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  #handle(req: FastifyRequest, reply: FastifyReply): void {
    const url = req.url;
    if (this.#draining) {
      reply
        .code(503)
        .header('connection', 'close')
        .header('retry-after', '1')
        .type('application/json; charset=utf-8')
        .send(errorBody('RL_UNAVAILABLE', 'this node is shutting down; retry on another node'));
      return;
    }
    const q = url.indexOf('?');
    // The path the application sees (ServeRequest.path: dot segments resolved), decoded.
    const path = routingPath(q === -1 ? url : url.slice(0, q));
    const route = this.routes.match(path);
    if (!route) {
      const known = Object.keys(this.routes.toJSON());
      const message = `no application at '${path}'; known route prefixes: ${known.length ? known.join(', ') : '(none)'}`;
      reply
        .code(404)
        .type('application/json; charset=utf-8')
        .send(errorBody('RL_NOT_FOUND', message, undefined, known));
      return;
    }
    reply.hijack();
    const res = reply.raw;
    const meta: CallMeta = {
      m: '__call__',
      h: { method: req.method, url, headers: flattenHeaders(req.headers) },
    };
    const modelId = req.headers.serve_multiplexed_model_id;
    if (typeof modelId === 'string' && modelId) meta.mm = modelId;
    const body = (req.body as Buffer | undefined) ?? EMPTY;
    const call = new ProxyCall(res, this, route, req.method, path, meta, body);
    this.#ongoingCount++;
    const timeoutS = this.#options.http.request_timeout_s;
    if (timeoutS !== null) {
      call.timer = setTimeout(() => {
        if (call.finished) return;
        call.routed?.cancel();
        call.fail(
          408,
          'RL_TIMEOUT',
          `request did not finish within http_options.request_timeout_s (${timeoutS} s)`,
        );
      }, timeoutS * 1000);
    }
    res.once('close', () => {
      if (!call.finished) call.abandon();
    });
    this.submit(call, route);
  }

  /** Hands a request to the router of its route's ingress deployment. */
  submit(call: ProxyCall, route: RouteTarget): void {
    const routed = new RoutedCall(call.meta, call.body, call);
    call.routed = routed;
    const router = this.#options.router.router(route.app, route.ingress);
    // Only a deployment that routes by prompt (prefix cache affinity) has its body read here.
    if (router.routesByPrompt) routed.prompt = promptOfBody(call.body);
    router.submit(routed);
  }

  /** Metrics and access log for a finished request. */
  record(route: RouteTarget, method: string, status: number, latencyMs: number, errorCode?: string): void {
    this.#ongoingCount--;
    const key = `${route.app}\u0000${route.routePrefix}\u0000${method}\u0000${status}`;
    let labelled = this.#labels.get(key);
    if (!labelled) {
      const m = this.#options.metrics;
      const base = { route: route.routePrefix, application: route.app, status_code: String(status) };
      labelled = { requests: m.requests.labels({ ...base, method }), latency: m.latency.labels(base) };
      this.#labels.set(key, labelled);
    }
    labelled.requests.inc();
    labelled.latency.observe(latencyMs);
    if (status >= 400) {
      this.#options.metrics.errors.inc({
        route: route.routePrefix,
        error_code: String(status),
        method,
        application: route.app,
      });
    }
    if (this.#options.accessLog) {
      this.#options.log.info(
        {
          app: route.app,
          method,
          route: route.routePrefix,
          status,
          ms: Number(latencyMs.toFixed(2)),
          error: errorCode,
        },
        'access',
      );
    }
  }

  /** Gauges are read when scraped, not written per request. */
  refreshGauges(): void {
    this.#ongoing.set(this.#ongoingCount);
  }

  /** The host it listens on, as configured (http_options.host). */
  get host(): string {
    return this.#options.http.host;
  }

  async listen(): Promise<string> {
    return this.server.listen({ host: this.#options.http.host, port: this.#options.http.port });
  }

  async close(): Promise<void> {
    await this.server.close();
  }
}
