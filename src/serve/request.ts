/**
 * What an ingress deployment's `__call__` receives for an HTTP request, and what it may return to
 * control status and headers. Both cross process boundaries, so they reduce to plain data on the wire.
 */
import { RaylineError } from '../errors.ts';

export interface WireRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

export class ServeRequest {
  readonly method: string;
  /** Path and query as received, e.g. `/analyze?verbose=1`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body bytes. */
  readonly body: Buffer;
  /** Aborted when the client disconnects or the request times out. */
  readonly signal: AbortSignal;
  #parsedUrl: URL | undefined;

  constructor(wire: WireRequest, signal: AbortSignal = new AbortController().signal) {
    this.method = wire.method;
    this.url = wire.url;
    this.headers = wire.headers;
    this.body = Buffer.isBuffer(wire.body)
      ? wire.body
      : Buffer.from(wire.body.buffer, wire.body.byteOffset, wire.body.byteLength);
    this.signal = signal;
  }

  #parse(): URL {
    this.#parsedUrl ??= new URL(this.url, 'http://rayline.local');
    return this.#parsedUrl;
  }

  get path(): string {
    return this.#parse().pathname;
  }

  /**
   * The query string as a URLSearchParams (read with `query.get('text')`, `query.getAll('tag')`),
   * as Ray's `request.query_params` is read with `.get()`; `query.text` is not a parameter.
   */
  get query(): URLSearchParams {
    return this.#parse().searchParams;
  }

  text(): string {
    return this.body.toString('utf8');
  }

  /** Parses the body as JSON; a malformed body throws RL_BAD_REQUEST, which answers 400. */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (error) {
      throw new RaylineError(
        'RL_BAD_REQUEST',
        `request body is not valid JSON: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  toWire(): WireRequest {
    return { method: this.method, url: this.url, headers: { ...this.headers }, body: this.body };
  }
}

export interface ResponseInit {
  status?: number;
  headers?: Record<string, string>;
}

/** Returned from `__call__` to set the status code and headers of the HTTP response. */
export class ServeResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;

  constructor(body: unknown, init: ResponseInit = {}) {
    this.body = body;
    this.status = init.status ?? 200;
    this.headers = init.headers ?? {};
  }
}

export function response(body: unknown, init?: ResponseInit): ServeResponse {
  return new ServeResponse(body, init);
}
