/**
 * Turns a watch response (newline-delimited JSON) into typed events. Kept apart from the client so
 * that the framing can be tested without a server.
 */
import type { Response } from 'undici';
import { KubeApiError } from './api-error.ts';
import type { KubeObject, KubeStatus } from './resources.ts';

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** Only metadata.resourceVersion is meaningful: the stream has progressed this far. */
  | { type: 'BOOKMARK'; object: T }
  /** The server ends the watch; code 410 means the resourceVersion is too old (relist). */
  | { type: 'ERROR'; object: KubeStatus };

/** Splits chunks into lines, handing each complete one to onLine. */
export class LineSplitter {
  #rest = '';
  readonly #onLine: (line: string) => void;

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }

  push(chunk: string): void {
    const text = this.#rest + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl).trim();
      start = nl + 1;
      if (line) this.#onLine(line);
    }
    this.#rest = text.slice(start);
  }

  end(): void {
    const line = this.#rest.trim();
    this.#rest = '';
    if (line) this.#onLine(line);
  }
}

export function parseWatchLine<T extends KubeObject>(line: string, path: string): WatchEvent<T> {
  let event: WatchEvent<T>;
  try {
    event = JSON.parse(line) as WatchEvent<T>;
  } catch (err) {
    throw new KubeApiError('GET', path, 0, 'BadWatchEvent', `unparseable watch line: ${line.slice(0, 200)}`, {
      cause: err,
    });
  }
  if (!event || typeof event.type !== 'string' || typeof event.object !== 'object') {
    throw new KubeApiError('GET', path, 0, 'BadWatchEvent', `malformed watch event: ${line.slice(0, 200)}`);
  }
  return event;
}

/** Reads the stream to its end, or until the signal aborts. Stream failures propagate. */
export async function readWatchStream<T extends KubeObject>(
  res: Response,
  onEvent: (event: WatchEvent<T>) => void,
  signal: AbortSignal,
  path = res.url,
): Promise<void> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  const lines = new LineSplitter((line) => {
    if (!signal.aborted) onEvent(parseWatchLine<T>(line, path));
  });
  for await (const chunk of res.body) {
    if (signal.aborted) break;
    lines.push(decoder.decode(chunk as Uint8Array, { stream: true }));
  }
  if (!signal.aborted) lines.end();
}
