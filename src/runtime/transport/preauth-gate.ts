/**
 * Bounds what peers that have not proved who they are may cost a listening port: how many such
 * connections it holds at once (in all and per source address), how many bytes each may send
 * before it authenticates, and how long it may take. Whatever goes past a bound is closed, counted
 * in a metric and logged at most once per interval, so that a flood costs a bounded amount of
 * memory and never the process (a hello is kilobytes; 700 peers each sending megabytes of one
 * were enough to exhaust a head's heap).
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Logger } from '../../observability/logger.ts';

export interface PreAuthLimits {
  /** Unauthenticated connections this port holds at once. */
  maxPending: number;
  /** The same, per source address. */
  maxPendingPerSource: number;
  /** Bytes a peer may send before it authenticates; 0 when the protocol bounds them itself (HTTP). */
  maxBytes: number;
  /** Time from accept to authentication. */
  deadlineMs: number;
}

export type PreAuthRefusal = 'port_limit' | 'source_limit' | 'too_many_bytes' | 'deadline';

export interface PreAuthGateOptions {
  /** The port's role, in logs and metric labels: cluster, replica, rest, proxy, metrics. */
  port: string;
  limits: PreAuthLimits;
  log?: Logger;
  /** Counts each refusal (a metric). */
  onRefused?(reason: PreAuthRefusal): void;
  /** At most one log line per this interval; the line says how many refusals it covers. */
  logIntervalMs?: number;
}

/** Defaults per port: a hello is kilobytes, and honest peers authenticate within milliseconds. */
export const preAuthDefaults = {
  cluster: { maxPending: 64, maxPendingPerSource: 16, maxBytes: 16 * 1024, deadlineMs: 5_000 },
  replica: { maxPending: 64, maxPendingPerSource: 16, maxBytes: 4 * 1024, deadlineMs: 5_000 },
  rest: { maxPending: 64, maxPendingPerSource: 16, maxBytes: 0, deadlineMs: 10_000 },
  metrics: { maxPending: 64, maxPendingPerSource: 16, maxBytes: 0, deadlineMs: 10_000 },
  // The proxy serves the public: "authenticated" means a first request arrived whole.
  proxy: { maxPending: 1024, maxPendingPerSource: 256, maxBytes: 0, deadlineMs: 10_000 },
} satisfies Record<string, PreAuthLimits>;

/** A connection admitted before authentication: `authenticated()` ends its bounds. */
export interface PreAuthTicket {
  authenticated(): void;
  readonly pending: boolean;
}

export class PreAuthGate {
  readonly port: string;
  readonly #limits: PreAuthLimits;
  readonly #options: PreAuthGateOptions;
  readonly #perSource = new Map<string, number>();
  #pending = 0;
  #refused: Partial<Record<PreAuthRefusal, number>> = {};
  #lastLogMs = Number.NEGATIVE_INFINITY;
  #refusedTotal = 0;

  constructor(options: PreAuthGateOptions) {
    this.#options = options;
    this.port = options.port;
    this.#limits = options.limits;
  }

  /** Unauthenticated connections held now. */
  get pending(): number {
    return this.#pending;
  }

  /** Connections refused or cut since the gate was made. */
  get refusedTotal(): number {
    return this.#refusedTotal;
  }

  /**
   * Admits a freshly accepted socket, or destroys it (and answers undefined) when the port or its
   * source already holds as many unauthenticated connections as allowed.
   */
  admit(socket: net.Socket): PreAuthTicket | undefined {
    const limits = this.#limits;
    const source = socket.remoteAddress ?? '';
    const fromSource = this.#perSource.get(source) ?? 0;
    if (this.#pending >= limits.maxPending || fromSource >= limits.maxPendingPerSource) {
      this.#refuse(this.#pending >= limits.maxPending ? 'port_limit' : 'source_limit', source);
      socket.destroy();
      return undefined;
    }
    this.#pending++;
    this.#perSource.set(source, fromSource + 1);
    let pending = true;
    let received = 0;
    const release = () => {
      if (!pending) return;
      pending = false;
      clearTimeout(timer);
      socket.off('data', count);
      socket.off('close', release);
      this.#pending--;
      const n = (this.#perSource.get(source) ?? 1) - 1;
      if (n === 0) this.#perSource.delete(source);
      else this.#perSource.set(source, n);
    };
    const cut = (reason: PreAuthRefusal) => {
      if (!pending) return;
      release();
      this.#refuse(reason, source);
      socket.destroy();
    };
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxBytes) cut('too_many_bytes');
    };
    if (limits.maxBytes > 0) socket.on('data', count);
    socket.once('close', release);
    const timer = setTimeout(() => cut('deadline'), limits.deadlineMs);
    timer.unref();
    return {
      authenticated: release,
      get pending() {
        return pending;
      },
    };
  }

  #refuse(reason: PreAuthRefusal, source: string): void {
    this.#refusedTotal++;
    this.#options.onRefused?.(reason);
    this.#refused[reason] = (this.#refused[reason] ?? 0) + 1;
    const now = Date.now();
    if (now - this.#lastLogMs < (this.#options.logIntervalMs ?? 10_000)) return;
    this.#lastLogMs = now;
    this.#options.log?.warn(
      { port: this.port, refused: this.#refused, lastSource: source, limits: this.#limits },
      'closed unauthenticated connections past their limits (counts since the last such line)',
    );
    this.#refused = {};
  }
}

const tickets = new WeakMap<net.Socket, PreAuthTicket>();

/**
 * Gates an HTTP server's connections. Node bounds a request head itself (`maxHeaderSize`), so the
 * gate bounds how many connections wait for one and for how long. A connection stays pre-auth until
 * `authenticated(req)` is called for one of its requests (after the bearer check, or at once for
 * ports that serve the public).
 */
export function gateHttpServer(server: HttpServer, gate: PreAuthGate): void {
  server.on('connection', (socket: net.Socket) => {
    const ticket = gate.admit(socket);
    if (ticket) tickets.set(socket, ticket);
  });
}

/** The connection of this request passed authentication (or, on a public port, sent a request). */
export function markAuthenticated(req: IncomingMessage): void {
  tickets.get(req.socket)?.authenticated();
}

/** Whether this request's connection has not authenticated yet. */
export function isPreAuth(req: IncomingMessage): boolean {
  return tickets.get(req.socket)?.pending ?? false;
}
