/**
 * A minimal GGUF v3 writer: header, typed metadata key/values, tensor infos and aligned tensor data,
 * all little-endian. Written from the published GGUF layout so the project can produce its own test
 * models without downloading any; F32 and F16 tensors only (no quantised types).
 */

import { writeFile } from 'node:fs/promises';

/** GGUF value type ids, as stored on disk. */
const ValueType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufScalarType = Exclude<keyof typeof ValueType, 'array' | 'uint64' | 'int64'>;

export type GgufValue =
  | { type: Exclude<GgufScalarType, 'bool' | 'string'>; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: 'string'; value: readonly string[] }
  | { type: 'array'; itemType: Exclude<GgufScalarType, 'bool' | 'string'>; value: ArrayLike<number> };

/** Small constructors so metadata tables read like the spec's key list. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'int32', value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'float32', value }),
};

/** ggml tensor type ids for the element types this writer can store. */
const TensorType = { f32: 0, f16: 1 } as const;

export type GgufTensor = {
  name: string;
  /** ggml order: shape[0] is the contiguous (row) dimension, e.g. [n_embd, n_vocab] for embeddings. */
  shape: readonly number[];
  type: keyof typeof TensorType;
  data: Float32Array;
};

export const DEFAULT_ALIGNMENT = 32;

/**
 * Growable little-endian byte sink; avoids sizing the header in a separate pass. Callers take the
 * offset from reserve() before touching buf/view, because growing replaces both.
 */
class ByteSink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  length = 0;

  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length += n;
    return at;
  }
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  u64(v: bigint | number): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  /** GGUF strings: u64 byte length, then UTF-8 bytes without a terminator. */
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad); // new bytes are already zero: the buffer is zero-initialised and never reused
  }
}

type Scalar = number | boolean | string;

/** One writer per scalar type; arrays reuse them for their items. */
const scalarWriters: Record<GgufScalarType, (sink: ByteSink, v: Scalar) => void> = {
  uint8: (s, v) => s.u8(v as number),
  int8: (s, v) => s.i8(v as number),
  uint16: (s, v) => s.u16(v as number),
  int16: (s, v) => s.i16(v as number),
  uint32: (s, v) => s.u32(v as number),
  int32: (s, v) => s.i32(v as number),
  float32: (s, v) => s.f32(v as number),
  float64: (s, v) => s.f64(v as number),
  bool: (s, v) => s.u8(v ? 1 : 0),
  string: (s, v) => s.string(v as string),
};

function writeValue(sink: ByteSink, value: GgufValue): void {
  sink.u32(ValueType[value.type]);
  switch (value.type) {
    case 'array': {
      const write = scalarWriters[value.itemType];
      sink.u32(ValueType[value.itemType]);
      sink.u64(value.value.length);
      for (let i = 0; i < value.value.length; i++) write(sink, value.value[i]);
      return;
    }
    case 'uint64':
      sink.u64(value.value);
      return;
    case 'int64':
      sink.i64(value.value);
      return;
    default:
      scalarWriters[value.type](sink, value.value);
  }
}

/** IEEE half from a float, round-to-nearest-even; enough for weights (no NaN payloads kept). */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
function toHalf(x: number): number {
  scratchF32[0] = x; // shared scratch: allocating per value made big models take seconds
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) {
    half++;
    if (half === 0x400) {
      half = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | half;
}

function tensorBytes(t: GgufTensor): Uint8Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new Error(
      `tensor ${t.name}: shape ${t.shape.join('x')} needs ${count} values, got ${t.data.length}`,
    );
  }
  if (t.type === 'f32') {
    // Copy so the view is little-endian regardless of the source's offset; Node hosts are LE.
    return new Uint8Array(Float32Array.from(t.data).buffer);
  }
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) out[i] = toHalf(t.data[i]);
  return new Uint8Array(out.buffer);
}

/**
 * Encode a whole GGUF file. `general.alignment` is written (as the first key) when missing so that
 * readers never have to assume the default.
 */
export function encodeGguf(
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
  alignment = DEFAULT_ALIGNMENT,
): Uint8Array {
  const kv = metadata.some(([k]) => k === 'general.alignment')
    ? metadata
    : [['general.alignment', gguf.u32(alignment)] as const, ...metadata];
  const payloads = tensors.map(tensorBytes);
  const sink = new ByteSink();
  sink.bytes(Buffer.from('GGUF', 'latin1'));
  sink.u32(3);
  sink.u64(tensors.length);
  sink.u64(kv.length);
  for (const [key, value] of kv) {
    sink.string(key);
    writeValue(sink, value);
  }
  // Offsets are relative to the start of the data section; every tensor starts aligned.
  let offset = 0;
  tensors.forEach((t, i) => {
    sink.string(t.name);
    sink.u32(t.shape.length);
    for (const d of t.shape) sink.u64(d);
    sink.u32(TensorType[t.type]);
    sink.u64(offset);
    offset += payloads[i].length;
    offset += (alignment - (offset % alignment)) % alignment;
  });
  sink.padTo(alignment);
  for (const p of payloads) {
    sink.bytes(p);
    sink.padTo(alignment);
  }
  return sink.buf.subarray(0, sink.length);
}

export async function writeGguf(
  path: string,
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
  alignment = DEFAULT_ALIGNMENT,
): Promise<void> {
  await writeFile(path, encodeGguf(metadata, tensors, alignment));
}
