/**
 * One replica: the user's instance, the calls running on it, and the max_ongoing_requests cap.
 * Calls arrive as frames from any number of callers; results leave as frames on the same socket.
 */
import { RaylineError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ReplicaMetrics } from '../../observability/metrics.ts';
import { ServeRequest } from '../../serve/request.ts';
import type { CallMeta } from '../router/handle-port.ts';
import { activeRequest } from '../router/request-context.ts';
import { errorToWire } from '../router/wire-error.ts';
import { type Frame, FrameKind, STREAM_WINDOW } from '../transport/frame.ts';
import type { FramedSocket } from '../transport/framed-socket.ts';
import { decodeArgs, encodeValue } from '../transport/value-codec.ts';
import { encodeChunk, isAsyncIterable, toHttpResult } from './http-result.ts';

type Method = (...args: unknown[]) => unknown;

interface Running {
  abort: AbortController;
  iterator?: AsyncIterator<unknown>;
  /** Chunks we may still send before the caller grants more. */
  credits: number;
  wake?: () => void;
}

export class Replica {
  readonly #instance: Record<string, unknown>;
  readonly #name: string;
  readonly #log: Logger;
  readonly #metrics: {
    requests: { inc(): void };
    errors: { inc(): void };
    latency: { observe(ms: number): void };
    processing: { set(n: number): void };
  };
  readonly #debug: boolean;
  #maxOngoing: number;
  #ongoing = 0;
  #stopping = false;
  readonly #running = new Map<FramedSocket, Map<number, Running>>();
  #idleWaiters: (() => void)[] = [];

  constructor(options: {
    instance: object;
    name: string;
    maxOngoingRequests: number;
    log: Logger;
    metrics: ReplicaMetrics;
    labels: { deployment: string; replica: string; application: string; route: string };
    debug: boolean;
  }) {
    this.#instance = options.instance as Record<string, unknown>;
    this.#name = options.name;
    this.#maxOngoing = options.maxOngoingRequests;
    this.#log = options.log;
    this.#debug = options.debug;
    const m = options.metrics;
    this.#metrics = {
      requests: m.requests.labels(options.labels),
      errors: m.errors.labels(options.labels),
      latency: m.latency.labels(options.labels),
      processing: m.processing.labels(options.labels),
    };
  }

  get ongoing(): number {
    return this.#ongoing;
  }

  /** Gauges are read when scraped, not written per request. */
  refreshGauges(): void {
    this.#metrics.processing.set(this.#ongoing);
  }

  set maxOngoingRequests(value: number) {
    this.#maxOngoing = value;
  }

  /** Stop accepting calls: new ones are rejected, so callers route them to other replicas. */
  stopAccepting(): void {
    this.#stopping = true;
  }

  /** Resolves when no call is running. */
  idle(): Promise<void> {
    if (this.#ongoing === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  onFrame(socket: FramedSocket, frame: Frame): void {
    if (frame.kind === FrameKind.Call) {
      const meta = frame.meta as CallMeta | undefined;
      if (typeof meta?.m !== 'string' || this.#running.get(socket)?.has(frame.id)) {
        const message =
          typeof meta?.m !== 'string' ? 'malformed call: no method name' : `stream id ${frame.id} is in use`;
        socket.send(FrameKind.Error, frame.id, { q: this.#ongoing, code: 'RL_INTERNAL', message });
        return;
      }
      if (this.#stopping || this.#ongoing >= this.#maxOngoing) {
        socket.send(FrameKind.Reject, frame.id, { q: this.#ongoing });
        return;
      }
      this.#run(socket, frame.id, meta, frame.payload);
      this.#noteStarted(socket, frame.id);
    } else if (frame.kind === FrameKind.Credit) {
      const running = this.#running.get(socket)?.get(frame.id);
      if (running) {
        running.credits += (frame.meta as { n: number }).n;
        running.wake?.();
      }
    } else if (frame.kind === FrameKind.Cancel) {
      const running = this.#running.get(socket)?.get(frame.id);
      if (running) this.#cancel(running);
    }
  }

  #startedUpTo = new Map<FramedSocket, number>();

  /**
   * Tells the caller, once per event-loop turn, up to which id its calls have started, if any of
   * them is still running then (a call that already answered needs no such word).
   */
  #noteStarted(socket: FramedSocket, id: number): void {
    const first = this.#startedUpTo.size === 0;
    this.#startedUpTo.set(socket, id);
    if (!first) return;
    setImmediate(() => {
      for (const [s, upTo] of this.#startedUpTo) {
        if ((this.#running.get(s)?.size ?? 0) > 0) s.send(FrameKind.Started, upTo);
      }
      this.#startedUpTo.clear();
    });
  }

  /** A caller's connection closed: everything it was waiting for is cancelled. */
  onDisconnect(socket: FramedSocket): void {
    const calls = this.#running.get(socket);
    this.#running.delete(socket);
    if (calls) for (const running of calls.values()) this.#cancel(running);
  }

  #cancel(running: Running): void {
    running.abort.abort(new RaylineError('RL_CANCELLED', 'request cancelled by its caller'));
    running.wake?.();
    running.iterator?.return?.().catch(() => {});
  }

  async #run(socket: FramedSocket, id: number, meta: CallMeta, payload: Buffer): Promise<void> {
    this.#ongoing++;
    const started = performance.now();
    const running: Running = { abort: new AbortController(), credits: STREAM_WINDOW };
    let calls = this.#running.get(socket);
    if (!calls) {
      calls = new Map();
      this.#running.set(socket, calls);
    }
    calls.set(id, running);
    const signal = running.abort.signal;
    let failed = false;
    try {
      const method = this.#instance[meta.m];
      if (typeof method !== 'function') {
        throw new RaylineError('RL_NOT_FOUND', `deployment '${this.#name}' has no method '${meta.m}'`);
      }
      const args = meta.h ? [new ServeRequest({ ...meta.h, body: payload }, signal)] : decodeArgs(payload);
      const result = await activeRequest.run({ signal, modelId: meta.mm ?? '' }, () =>
        (method as Method).apply(this.#instance, args),
      );
      if (meta.h) {
        const accept = meta.h.headers.accept ?? '';
        const http = toHttpResult(result, accept.includes('text/event-stream'));
        const head = { q: 0, st: http.head.status, hd: http.head.headers };
        if (http.kind === 'body') {
          this.#finishCall(socket, calls, id);
          socket.send(FrameKind.Reply, id, { ...head, q: this.#ongoing }, http.body);
        } else {
          await this.#stream(socket, calls, id, running, http.chunks, head, (chunk) =>
            encodeChunk(chunk, http.sse),
          );
        }
      } else if (isAsyncIterable(result)) {
        await this.#stream(socket, calls, id, running, result[Symbol.asyncIterator](), { q: 0 }, encodeValue);
      } else {
        const bytes = encodeValue(result);
        this.#finishCall(socket, calls, id);
        socket.send(FrameKind.Reply, id, { q: this.#ongoing }, bytes);
      }
    } catch (error) {
      failed = true;
      this.#finishCall(socket, calls, id);
      if (signal.aborted) {
        this.#log.info({ method: meta.m }, 'request cancelled');
      } else {
        this.#log.error({ err: error, method: meta.m }, 'request failed');
      }
      socket.send(FrameKind.Error, id, { q: this.#ongoing, ...errorToWire(error, this.#debug) });
    } finally {
      this.#metrics.requests.inc();
      if (failed) this.#metrics.errors.inc();
      this.#metrics.latency.observe(performance.now() - started);
    }
  }

  /** StreamStart, the chunks as the caller's credit allows, End. */
  async #stream(
    socket: FramedSocket,
    calls: Map<number, Running>,
    id: number,
    running: Running,
    iterator: AsyncIterator<unknown>,
    head: { q: number; st?: number; hd?: Record<string, string> },
    encode: (chunk: unknown) => Uint8Array,
  ): Promise<void> {
    socket.send(FrameKind.StreamStart, id, { ...head, q: this.#ongoing });
    running.iterator = iterator;
    await this.#pump(socket, id, running, encode);
    this.#finishCall(socket, calls, id);
    socket.send(FrameKind.End, id, { q: this.#ongoing });
  }

  async #pump(
    socket: FramedSocket,
    id: number,
    running: Running,
    encode: (chunk: unknown) => Uint8Array,
  ): Promise<void> {
    const iterator = running.iterator!;
    const signal = running.abort.signal;
    while (true) {
      // Flow control: a caller that stopped consuming stops the generator here.
      while (running.credits <= 0 && !signal.aborted)
        await new Promise<void>((wake) => (running.wake = wake));
      running.wake = undefined;
      if (signal.aborted) throw signal.reason;
      const next = await iterator.next();
      if (signal.aborted) throw signal.reason;
      if (next.done) return;
      running.credits--;
      socket.send(FrameKind.Chunk, id, undefined, encode(next.value));
    }
  }

  #finishCall(socket: FramedSocket, calls: Map<number, Running>, id: number): void {
    if (!calls.delete(id)) return;
    if (calls.size === 0 && this.#running.get(socket) === calls) this.#running.delete(socket);
    this.#ongoing--;
    if (this.#ongoing === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
