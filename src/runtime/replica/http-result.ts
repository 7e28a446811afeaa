/**
 * Turns what an ingress method returned into an HTTP response: a value becomes JSON, a string text,
 * bytes octet-stream, a ServeResponse its own status and headers, an async iterable a stream (SSE
 * when the client asked for text/event-stream).
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { RaylineError } from '../../errors.ts';
import { ServeResponse } from '../../serve/request.ts';

export interface HttpHead {
  status: number;
  headers: Record<string, string>;
}

export type HttpResult =
  | { kind: 'body'; head: HttpHead; body: Uint8Array }
  | { kind: 'stream'; head: HttpHead; chunks: AsyncIterator<unknown>; sse: boolean };

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

function withType(headers: Record<string, string>, type: string): Record<string, string> {
  for (const name of Object.keys(headers)) if (name.toLowerCase() === 'content-type') return headers;
  return { ...headers, 'content-type': type };
}

/** Checked here, in the replica, so that a bad status or header fails this request with a clear error. */
function validateHead(status: number, headers: Record<string, string>): void {
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new RaylineError(
      'RL_USER_EXCEPTION',
      `response status must be an integer from 100 to 599, got ${status}`,
    );
  }
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  }
}

export function toHttpResult(value: unknown, acceptsEventStream: boolean): HttpResult {
  let status = 200;
  let headers: Record<string, string> = {};
  let body = value;
  if (value instanceof ServeResponse) {
    status = value.status;
    headers = value.headers;
    body = value.body;
    validateHead(status, headers);
  }
  if (isAsyncIterable(body)) {
    const sse = acceptsEventStream;
    return {
      kind: 'stream',
      head: { status, headers: withType(headers, sse ? 'text/event-stream' : TEXT) },
      chunks: body[Symbol.asyncIterator](),
      sse,
    };
  }
  if (typeof body === 'string')
    return { kind: 'body', head: { status, headers: withType(headers, TEXT) }, body: Buffer.from(body) };
  if (body instanceof Uint8Array) {
    return { kind: 'body', head: { status, headers: withType(headers, 'application/octet-stream') }, body };
  }
  return {
    kind: 'body',
    head: { status, headers: withType(headers, JSON_TYPE) },
    body: Buffer.from(JSON.stringify(body ?? null)),
  };
}

/** One streamed item as bytes: strings and bytes as they are, other values as JSON lines. */
export function encodeChunk(chunk: unknown, sse: boolean): Buffer {
  const text =
    typeof chunk === 'string'
      ? chunk
      : chunk instanceof Uint8Array
        ? sse
          ? Buffer.from(chunk).toString('utf8')
          : undefined
        : JSON.stringify(chunk) + (sse ? '' : '\n');
  if (text === undefined) {
    const bytes = chunk as Uint8Array;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return Buffer.from(sse ? `data: ${text.replace(/\n/g, '\ndata: ')}\n\n` : text);
}
