/**
 * The cluster channel: JSON messages, one per line, over TCP between a worker and the head. Control
 * traffic only (a few messages per replica and second), so readability wins over a binary format.
 */
import type net from 'node:net';
import { createInterface } from 'node:readline';

/** Lines longer than this are a protocol error (a routing table of thousands of replicas fits). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

export class Channel<In, Out> {
  readonly socket: net.Socket;
  #closed = false;
  /** Set by the owner once the peer proved who it is. */
  authenticated = false;
  onMessage: ((message: In) => void) | undefined;
  onClose: ((error?: Error) => void) | undefined;

  constructor(socket: net.Socket, options: { unauthenticatedLimitBytes?: number } = {}) {
    this.socket = socket;
    // Until the first message (the hello) is accepted, a peer may not make us buffer much.
    const limit = options.unauthenticatedLimitBytes;
    if (limit !== undefined) {
      let received = 0;
      const count = (chunk: Buffer) => {
        received += chunk.length;
        if (received > limit && !this.authenticated) socket.destroy(new Error('hello too large'));
        if (this.authenticated) socket.off('data', count);
      };
      socket.on('data', count);
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    const lines = createInterface({ input: socket, crlfDelay: Number.POSITIVE_INFINITY });
    // The socket's own 'error' below reports it; readline re-emits it and would otherwise throw.
    lines.on('error', () => {});
    lines.on('line', (line) => {
      if (line.length > MAX_LINE_BYTES) return this.close(new Error('cluster message too large'));
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
    if (error) this.socket.destroy(error);
    else this.socket.end();
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
