/**
 * The wire format between Rayline processes, and the only module that knows it.
 *
 *   u32 length of the rest | u8 kind | u32 stream id | u32 meta length | meta (JSON) | payload
 *
 * Meta carries small structured fields; payload carries bytes (serialized values, HTTP bodies,
 * stream chunks) without a JSON round trip.
 */

export const FrameKind = {
  /** caller → replica: start a call. */
  Call: 1,
  /** replica → caller: the whole unary result. */
  Reply: 2,
  /** replica → caller: a streamed result begins (meta may carry an HTTP status and headers). */
  StreamStart: 3,
  /** replica → caller: one streamed item. */
  Chunk: 4,
  /** replica → caller: the stream ended. */
  End: 5,
  /** replica → caller: the call failed. */
  Error: 6,
  /** replica → caller: the replica is at max_ongoing_requests; route the call elsewhere. */
  Reject: 7,
  /** caller → replica: stop working on this call. */
  Cancel: 8,
  /** caller → replica: the caller consumed `meta.n` more chunks of this stream; send that many more. */
  Credit: 9,
  /**
   * replica → caller: every call up to this stream id has started. Sent once per event-loop turn
   * while calls are running, so that when a replica dies its callers know which calls never
   * started and can safely send them elsewhere.
   */
  Started: 10,
  /**
   * caller → replica, first on a TCP connection: `meta.token` is the cluster's replica credential. A
   * replica that has one closes a TCP connection whose first frame is not this with the same one.
   */
  Hello: 11,
} as const;

export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Chunks of one stream a replica may send beyond what its caller has consumed (flow control). */
export const STREAM_WINDOW = 32;

export interface Frame {
  kind: FrameKind;
  id: number;
  meta: unknown;
  payload: Buffer;
}

const HEADER_BYTES = 13;
const EMPTY = Buffer.alloc(0);

export function encodeFrame(kind: FrameKind, id: number, meta: unknown, payload: Uint8Array = EMPTY): Buffer {
  const metaText = meta === undefined ? '' : JSON.stringify(meta);
  const metaBytes = Buffer.byteLength(metaText);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + metaBytes + payload.byteLength);
  writeHead(frame, kind, id, metaText, metaBytes, payload.byteLength);
  if (payload.byteLength > 0) frame.set(payload, HEADER_BYTES + metaBytes);
  return frame;
}

/**
 * A frame's header and meta alone, for a payload written after it as it is: a large body is then
 * sent without being copied into a frame first (one copy fewer of every upload in memory).
 */
export function encodeFrameHead(kind: FrameKind, id: number, meta: unknown, payloadBytes: number): Buffer {
  const metaText = meta === undefined ? '' : JSON.stringify(meta);
  const metaBytes = Buffer.byteLength(metaText);
  const head = Buffer.allocUnsafe(HEADER_BYTES + metaBytes);
  writeHead(head, kind, id, metaText, metaBytes, payloadBytes);
  return head;
}

function writeHead(
  into: Buffer,
  kind: FrameKind,
  id: number,
  metaText: string,
  metaBytes: number,
  payloadBytes: number,
): void {
  into.writeUInt32BE(HEADER_BYTES - 4 + metaBytes + payloadBytes, 0);
  into.writeUInt8(kind, 4);
  into.writeUInt32BE(id, 5);
  into.writeUInt32BE(metaBytes, 9);
  if (metaBytes > 0) into.write(metaText, HEADER_BYTES, 'utf8');
}

/** Frames larger than this are a protocol error, not a reason to buffer without bound. */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024;

/**
 * Incremental decoder: feed socket chunks, get whole frames. Chunks are kept as they come and joined
 * once a whole frame is there, so a large frame costs one copy, not one per chunk.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes needed before the next frame can be decoded (its length prefix, then all of it). */
  #needed = 4;
  readonly #onFrame: (frame: Frame) => void;

  constructor(onFrame: (frame: Frame) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered < this.#needed) return;
    const buf = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#buffered);
    let offset = 0;
    this.#needed = 4;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length > MAX_FRAME_BYTES || length < HEADER_BYTES - 4) {
        throw new Error(`transport: invalid frame length ${length}`);
      }
      if (buf.length - offset < 4 + length) {
        this.#needed = 4 + length;
        break;
      }
      const kind = buf.readUInt8(offset + 4) as FrameKind;
      const id = buf.readUInt32BE(offset + 5);
      const metaBytes = buf.readUInt32BE(offset + 9);
      if (metaBytes > length - (HEADER_BYTES - 4))
        throw new Error(`transport: meta length ${metaBytes} exceeds frame`);
      const metaStart = offset + HEADER_BYTES;
      const meta =
        metaBytes === 0 ? undefined : JSON.parse(buf.toString('utf8', metaStart, metaStart + metaBytes));
      const payload = buf.subarray(metaStart + metaBytes, offset + 4 + length);
      offset += 4 + length;
      this.#onFrame({ kind, id, meta, payload });
    }
    const rest = buf.length - offset;
    // Keep only the unfinished frame, copied so it does not pin the socket's whole read buffer.
    this.#chunks = rest === 0 ? [] : [Buffer.from(buf.subarray(offset))];
    this.#buffered = rest;
  }
}
