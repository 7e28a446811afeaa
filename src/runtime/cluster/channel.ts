/**
 * The cluster channel: JSON messages, one per line, over TCP between a worker and the head. Control
 * traffic only (a few messages per replica and second), so readability wins over a binary format.
 */
import type net from 'node:net';

/** Lines longer than this are a protocol error (a routing table of thousands of replicas fits). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Splits a byte stream into lines, holding at most `maxBytes` of an unfinished one: a peer that
 * never sends a newline costs that much, not whatever it cares to send.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #bytes = 0;
  readonly #maxBytes: number;
  readonly #onLine: (line: string) => void;

  constructor(maxBytes: number, onLine: (line: string) => void) {
    this.#maxBytes = maxBytes;
    this.#onLine = onLine;
  }

  /** Throws when a line grows past the limit. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (this.#bytes + (end - start) > this.#maxBytes) {
        this.#parts = [];
        throw new Error(`cluster message longer than ${this.#maxBytes} bytes`);
      }
      if (newline === -1) {
        // Copied, so a short tail does not pin the socket's whole read buffer.
        this.#parts.push(Buffer.from(chunk.subarray(start)));
        this.#bytes += chunk.length - start;
        return;
      }
      let line: string;
      if (this.#parts.length === 0) line = chunk.toString('utf8', start, end);
      else {
        this.#parts.push(chunk.subarray(start, end));
        line = Buffer.concat(this.#parts).toString('utf8');
        this.#parts = [];
        this.#bytes = 0;
      }
      start = newline + 1;
      this.#onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
  }
}

export class Channel<In, Out> {
  readonly socket: net.Socket;
  #closed = false;
  /** close() was called: whatever the peer still sends is ignored. */
  #closing = false;
  /** Set by the owner once the peer proved who it is. */
  authenticated = false;
  onMessage: ((message: In) => void) | undefined;
  onClose: ((error?: Error) => void) | undefined;

  constructor(socket: net.Socket, options: { maxLineBytes?: number } = {}) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    const lines = new LineSplitter(options.maxLineBytes ?? MAX_LINE_BYTES, (line) => {
      if (this.#closed || this.#closing || line === '') return;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        return this.close(new Error('malformed cluster message'));
      }
      if (typeof (message as { t?: unknown } | null)?.t !== 'string') {
        return this.close(new Error('cluster message without a type'));
      }
      try {
        this.onMessage?.(message as In);
      } catch (error) {
        // A message that breaks its handler costs this peer its connection, never the process.
        this.close(error as Error);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        lines.push(chunk);
      } catch (error) {
        this.close(error as Error);
      }
    });
    const closed = (error?: Error) => {
      if (this.#closed) return;
      this.#closed = true;
      this.onClose?.(error);
    };
    socket.on('error', closed);
    socket.on('close', () => closed());
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: Out): void {
    if (!this.#closed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** A message already serialized by `serialize`: one JSON.stringify for many channels. */
  sendSerialized(line: Serialized<Out>): void {
    if (!this.#closed) this.socket.write(line);
  }

  close(error?: Error): void {
    this.#closing = true;
    if (error) this.socket.destroy(error);
    else {
      this.socket.end();
      // A peer that never closes its side does not keep the socket: it had its last message.
      setTimeout(() => this.socket.destroy(), 2_000).unref();
    }
  }
}

/** A message as its channel line, for sending the same one to many nodes. */
export type Serialized<T> = string & { readonly __message?: T };

export function serialize<T>(message: T): Serialized<T> {
  return `${JSON.stringify(message)}\n`;
}

/** `host:port` → options for net.connect, with the cluster port's default. */
export function parseHostPort(address: string, defaultPort = 6379): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(address);
  if (!match) throw new Error(`'${address}' is not host:port`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port: match[2] ? Number(match[2]) : defaultPort };
}
