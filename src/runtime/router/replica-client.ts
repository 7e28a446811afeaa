/**
 * The caller's side of the transport to one replica: many concurrent calls multiplexed over one
 * connection, each identified by a stream id. Frames sent before the connection is up are queued.
 */
import { RaylineError } from '../../errors.ts';
import { type Frame, FrameKind } from '../transport/frame.ts';
import { connectFramed, type FramedSocket, isTcpAddress } from '../transport/framed-socket.ts';

export interface CallSink {
  onFrame(frame: Frame): void;
  /** The connection closed before the call's last frame. */
  /**
   * The call ended without its last frame: the connection closed (`started` says whether the
   * replica had begun it), or handling one of its frames failed (the connection is fine).
   */
  onLost(error: RaylineError, started: boolean, connectionLost: boolean): void;
}

const CLOSED_BY_CALLER = 'closed by caller';

export class ReplicaClient {
  readonly address: string;
  #socket: FramedSocket | undefined;
  #queued: [FrameKind, number, unknown, Uint8Array | undefined][] = [];
  #nextId = 1;
  readonly #calls = new Map<number, CallSink>();
  #dead: RaylineError | undefined;
  /**
   * Every call up to this id has started (ids grow per connection; after 2^32 calls on one
   * connection they wrap, and calls in flight across the wrap would not be retried).
   */
  #startedUpTo = 0;
  readonly #onDead: (lost: boolean) => void;

  /** `onDead(lost)`: the connection ended; `lost` unless the caller closed it. */
  constructor(address: string, onDead: (lost: boolean) => void, token?: string) {
    this.address = address;
    this.#onDead = onDead;
    connectFramed(address, (frame) => this.#onFrame(frame)).then(
      (socket) => {
        if (this.#dead) {
          socket.destroy();
          return;
        }
        this.#socket = socket;
        if (isTcpAddress(address)) socket.send(FrameKind.Hello, 0, { token: token ?? '' });
        socket.onClose((error) => this.#fail(error));
        for (const [kind, id, meta, payload] of this.#queued) socket.send(kind, id, meta, payload);
        this.#queued = [];
      },
      (error: Error) => this.#fail(error),
    );
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  call(sink: CallSink, meta: unknown, payload: Uint8Array): number {
    const id = this.#nextId;
    this.#nextId = id === 0xffffffff ? 1 : id + 1;
    if (this.#dead) {
      const dead = this.#dead;
      queueMicrotask(() => sink.onLost(dead, false, true));
      return id;
    }
    this.#calls.set(id, sink);
    this.#send(FrameKind.Call, id, meta, payload);
    return id;
  }

  /** Lets the replica send `n` more chunks of a stream. */
  credit(id: number, n: number): void {
    if (this.#calls.has(id)) this.#send(FrameKind.Credit, id, { n }, undefined);
  }

  cancel(id: number): void {
    if (this.#calls.delete(id)) this.#send(FrameKind.Cancel, id, undefined, undefined);
  }

  close(): void {
    this.#fail(undefined, CLOSED_BY_CALLER);
  }

  #send(kind: FrameKind, id: number, meta: unknown, payload: Uint8Array | undefined): void {
    if (this.#socket) this.#socket.send(kind, id, meta, payload);
    else this.#queued.push([kind, id, meta, payload]);
  }

  #onFrame(frame: Frame): void {
    if (frame.kind === FrameKind.Started) {
      this.#startedUpTo = frame.id;
      return;
    }
    const sink = this.#calls.get(frame.id);
    if (!sink) return; // cancelled meanwhile
    // The replica starts calls in the order they arrive: an answer to one means all before it started.
    if (frame.id > this.#startedUpTo) this.#startedUpTo = frame.id;
    const kind = frame.kind;
    const terminal =
      kind === FrameKind.Reply ||
      kind === FrameKind.End ||
      kind === FrameKind.Error ||
      kind === FrameKind.Reject;
    if (terminal) this.#calls.delete(frame.id);
    try {
      sink.onFrame(frame);
    } catch (error) {
      // One call's failing handler must not take down the connection every other call shares.
      if (!terminal) this.cancel(frame.id);
      try {
        sink.onLost(
          new RaylineError(
            'RL_INTERNAL',
            `handling the replica's answer failed: ${(error as Error).message}`,
          ),
          true,
          false,
        );
      } catch {}
    }
  }

  #fail(error?: Error, reason = 'connection to replica lost'): void {
    if (this.#dead) return;
    this.#dead = new RaylineError(
      'RL_REPLICA_DIED',
      `${reason} (${this.address})${error ? `: ${error.message}` : ''}`,
      { cause: error },
    );
    this.#socket?.destroy();
    const calls = [...this.#calls];
    this.#calls.clear();
    for (const [id, sink] of calls) sink.onLost(this.#dead, id <= this.#startedUpTo, true);
    this.#onDead(reason !== CLOSED_BY_CALLER);
  }
}

/** One connection per replica address, shared by every router in the process. */
export class ReplicaClientPool {
  readonly #clients = new Map<string, ReplicaClient>();
  /** The cluster's replica credential, presented to replicas on other nodes (TCP). */
  token: string | undefined;
  /**
   * Addresses whose connection was lost, and when. A replica never comes back at the same address,
   * so a routing table that still lists one (the controller has not noticed yet) is not trusted
   * for a while: calls would be retried against it until their retries ran out.
   */
  readonly #lost = new Map<string, number>();

  wasLost(address: string, withinMs: number): boolean {
    const at = this.#lost.get(address);
    if (at === undefined) return false;
    if (performance.now() - at < withinMs) return true;
    this.#lost.delete(address);
    return false;
  }

  get(address: string): ReplicaClient {
    let client = this.#clients.get(address);
    if (!client || client.dead) {
      const created = new ReplicaClient(
        address,
        (lost) => {
          if (this.#clients.get(address) === created) this.#clients.delete(address);
          if (lost) this.#lost.set(address, performance.now());
        },
        this.token,
      );
      client = created;
      this.#clients.set(address, client);
    }
    return client;
  }

  /** Closes connections to replicas no longer in any routing table. */
  retain(addresses: Set<string>): void {
    for (const address of this.#lost.keys()) if (!addresses.has(address)) this.#lost.delete(address);
    for (const [address, client] of this.#clients) {
      if (!addresses.has(address) && client.inFlight === 0) {
        this.#clients.delete(address);
        client.close();
      }
    }
  }

  closeAll(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
