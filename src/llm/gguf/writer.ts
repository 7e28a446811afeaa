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

/** Growable little-endian byte sink; avoids sizing the header in a separate pass. */
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
    this.view.setUint8(this.reserve(1), v);
  }
  i8(v: number): void {
    this.view.setInt8(this.reserve(1), v);
  }
  u16(v: number): void {
    this.view.setUint16(this.reserve(2), v, true);
  }
  i16(v: number): void {
    this.view.setInt16(this.reserve(2), v, true);
  }
  u32(v: number): void {
    this.view.setUint32(this.reserve(4), v, true);
  }
  i32(v: number): void {
    this.view.setInt32(this.reserve(4), v, true);
  }
  u64(v: bigint | number): void {
    this.view.setBigUint64(this.reserve(8), BigInt(v), true);
  }
  i64(v: bigint): void {
    this.view.setBigInt64(this.reserve(8), v, true);
  }
  f32(v: number): void {
    this.view.setFloat32(this.reserve(4), v, true);
  }
  f64(v: number): void {
    this.view.setFloat64(this.reserve(8), v, true);
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.reserve(b.length));
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

function writeScalar(sink: ByteSink, type: GgufScalarType, v: number | boolean | string): void {
  switch (type) {
    case 'uint8':
      return sink.u8(v as number);
    case 'int8':
      return sink.i8(v as number);
    case 'uint16':
      return sink.u16(v as number);
    case 'int16':
      return sink.i16(v as number);
    case 'uint32':
      return sink.u32(v as number);
    case 'int32':
      return sink.i32(v as number);
    case 'float32':
      return sink.f32(v as number);
    case 'float64':
      return sink.f64(v as number);
    case 'bool':
      return sink.u8(v ? 1 : 0);
    case 'string':
      return sink.string(v as string);
  }
}

function writeValue(sink: ByteSink, value: GgufValue): void {
  sink.u32(ValueType[value.type]);
  if (value.type === 'array') {
    sink.u32(ValueType[value.itemType]);
    sink.u64(value.value.length);
    for (let i = 0; i < value.value.length; i++) writeScalar(sink, value.itemType, value.value[i]);
  } else if (value.type === 'uint64') {
    sink.u64(value.value);
  } else if (value.type === 'int64') {
    sink.i64(value.value);
  } else {
    writeScalar(sink, value.type, value.value);
  }
}

/** IEEE half from a float, round-to-nearest-even; enough for weights (no NaN payloads kept). */
function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0];
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
    throw new Error(`tensor ${t.name}: shape ${t.shape.join('x')} needs ${count} values, got ${t.data.length}`);
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
