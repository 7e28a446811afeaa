/**
 * A socket that sends and receives frames. Writes made in one turn of the event loop leave in one
 * syscall: the socket is corked on the first write and uncorked in the check phase (setImmediate),
 * after every I/O callback of this turn had its chance to add frames. Under load this turns one
 * write per request into one write per turn.
 */
import net from 'node:net';
import { encodeFrame, encodeFrameHead, type Frame, FrameDecoder, type FrameKind } from './frame.ts';

/** Payloads at least this large are written after their header as they are, not copied into a frame. */
const UNCOPIED_PAYLOAD_BYTES = 64 * 1024;

export class FramedSocket {
  readonly socket: net.Socket;
  #corked = false;
  #closed = false;
  readonly #closeListeners: ((error?: Error) => void)[] = [];

  constructor(socket: net.Socket, onFrame: (frame: Frame) => void) {
    this.socket = socket;
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(onFrame);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    const closed = (error?: Error) => {
      if (this.#closed) return;
      this.#closed = true;
      for (const listener of this.#closeListeners) listener(error);
    };
    socket.on('error', (error) => closed(error));
    socket.on('close', () => closed());
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  send(kind: FrameKind, id: number, meta?: unknown, payload?: Uint8Array): void {
    if (this.#closed) return;
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.socket.uncork();
      });
    }
    if (payload !== undefined && payload.byteLength >= UNCOPIED_PAYLOAD_BYTES) {
      // Corked: header and payload still leave together. The payload must not change meanwhile.
      this.socket.write(encodeFrameHead(kind, id, meta, payload.byteLength));
      this.socket.write(payload);
      return;
    }
    this.socket.write(encodeFrame(kind, id, meta, payload));
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** `host:port` (TCP, another node) rather than a unix socket path (this node). */
export function isTcpAddress(address: string): boolean {
  return /^[^/]+:\d+$/.test(address);
}

/** Connects to a replica's address: a unix socket path, or `host:port` for TCP. */
export function connectFramed(address: string, onFrame: (frame: Frame) => void): Promise<FramedSocket> {
  return new Promise((resolve, reject) => {
    const socket = isTcpAddress(address)
      ? net.connect({
          host: address.slice(0, address.lastIndexOf(':')),
          port: Number(address.slice(address.lastIndexOf(':') + 1)),
        })
      : net.connect({ path: address });
    const framed = new FramedSocket(socket, onFrame);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(framed);
    });
    socket.once('error', reject);
  });
}
