/**
 * Writes a tiny llama-architecture GGUF with seeded random weights and the byte-level tokenizer of
 * byte-vocab.ts, so tests, examples and benchmarks run a real llama.cpp model without downloads.
 *
 * The weights are random but shaped so the model behaves usefully for serving tests: embedding
 * channel 0 holds a constant that no layer writes to, and the output rows of special tokens weigh
 * that channel strongly negative, so sampling never picks BOS/EOS/ChatML markers. Generation
 * therefore always runs to max_tokens (or a stop string), which keeps token-count assertions exact.
 */

import { stat } from 'node:fs/promises';
import { BYTE_VOCAB, byteVocab, CHATML_TEMPLATE } from './byte-vocab.ts';
import { type GgufTensor, type GgufValue, gguf, writeGguf } from './writer.ts';

export type TinyLlamaOptions = {
  seed?: number;
  embeddingLength?: number;
  blockCount?: number;
  headCount?: number;
  /** Defaults to headCount (no grouped-query attention). */
  headCountKv?: number;
  feedForwardLength?: number;
  contextLength?: number;
  name?: string;
  /** f16 halves the file; f32 (default) is exact and what the CPU tests use. */
  tensorType?: 'f32' | 'f16';
};

export type TinyLlamaInfo = {
  path: string;
  bytes: number;
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  options: Required<TinyLlamaOptions>;
};

const DEFAULTS: Required<TinyLlamaOptions> = {
  seed: 1,
  embeddingLength: 64,
  blockCount: 2,
  headCount: 4,
  headCountKv: 4,
  feedForwardLength: 128,
  contextLength: 512,
  name: 'rayline-tiny-llama',
  tensorType: 'f32',
};

/** Value of the constant channel; large next to the unit-variance others so it survives RMSNorm. */
const BIAS_CHANNEL = 8;
/** Weight of the bias channel in special tokens' output rows: pushes their logits to about -20. */
const SPECIAL_SUPPRESSION = -4;

/** mulberry32: a 32-bit state PRNG, tiny and good enough for weights; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Zero-mean, unit-variance samples: uniform on [-sqrt 3, sqrt 3]. The shape of the distribution does
 * not matter for a random model, and this is several times faster than Box-Muller on large models.
 */
function unitNoise(uniform: () => number): () => number {
  const halfWidth = Math.sqrt(3);
  return () => (uniform() * 2 - 1) * halfWidth;
}

function validate(o: Required<TinyLlamaOptions>): void {
  const positive = [
    'embeddingLength',
    'blockCount',
    'headCount',
    'headCountKv',
    'feedForwardLength',
    'contextLength',
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.embeddingLength % o.headCount !== 0)
    throw new Error('embeddingLength must be a multiple of headCount');
  if ((o.embeddingLength / o.headCount) % 2 !== 0) throw new Error('head dimension must be even (RoPE)');
  if (o.headCount % o.headCountKv !== 0) throw new Error('headCount must be a multiple of headCountKv');
}

/** Build the metadata and tensors in memory; writeTinyLlama puts them in a file. */
export function buildTinyLlama(options: TinyLlamaOptions = {}): {
  metadata: Array<[string, GgufValue]>;
  tensors: GgufTensor[];
  options: Required<TinyLlamaOptions>;
} {
  const pick = <K extends keyof TinyLlamaOptions>(k: K) => options[k] ?? DEFAULTS[k];
  const o: Required<TinyLlamaOptions> = {
    seed: pick('seed'),
    embeddingLength: pick('embeddingLength'),
    blockCount: pick('blockCount'),
    headCount: pick('headCount'),
    headCountKv: options.headCountKv ?? pick('headCount'),
    feedForwardLength: pick('feedForwardLength'),
    contextLength: pick('contextLength'),
    name: pick('name'),
    tensorType: pick('tensorType'),
  };
  validate(o);
  const E = o.embeddingLength;
  const headDim = E / o.headCount;
  const kvDim = headDim * o.headCountKv;
  const F = o.feedForwardLength;
  const V = BYTE_VOCAB.size;
  const noise = unitNoise(mulberry32(o.seed));

  // A [cols, rows] matrix in ggml order (cols contiguous) with entries of mean 0 and std `scale`.
  const matrix = (name: string, cols: number, rows: number, scale: number): GgufTensor => {
    const data = new Float32Array(cols * rows);
    for (let i = 0; i < data.length; i++) data[i] = noise() * scale;
    return { name, shape: [cols, rows], type: o.tensorType, data };
  };
  // Norm weights stay f32: llama.cpp multiplies by them elementwise and they are tiny anyway.
  const ones = (name: string): GgufTensor => ({
    name,
    shape: [E],
    type: 'f32',
    data: new Float32Array(E).fill(1),
  });
  // Output projections must not write into the bias channel (row 0 of their result).
  const noBiasWrite = (t: GgufTensor): GgufTensor => {
    t.data.fill(0, 0, t.shape[0]);
    return t;
  };

  const embd = matrix('token_embd.weight', E, V, 1);
  for (let tok = 0; tok < V; tok++) embd.data[tok * E] = BIAS_CHANNEL;

  const tensors: GgufTensor[] = [embd];
  for (let b = 0; b < o.blockCount; b++) {
    const p = `blk.${b}.`;
    tensors.push(
      ones(`${p}attn_norm.weight`),
      matrix(`${p}attn_q.weight`, E, E, 1 / Math.sqrt(E)),
      matrix(`${p}attn_k.weight`, E, kvDim, 1 / Math.sqrt(E)),
      matrix(`${p}attn_v.weight`, E, kvDim, 1 / Math.sqrt(E)),
      noBiasWrite(matrix(`${p}attn_output.weight`, E, E, 0.5 / Math.sqrt(E))),
      ones(`${p}ffn_norm.weight`),
      matrix(`${p}ffn_gate.weight`, E, F, 1 / Math.sqrt(E)),
      matrix(`${p}ffn_up.weight`, E, F, 1 / Math.sqrt(E)),
      noBiasWrite(matrix(`${p}ffn_down.weight`, F, E, 0.5 / Math.sqrt(F))),
    );
  }
  tensors.push(ones('output_norm.weight'));
  const output = matrix('output.weight', E, V, 0.5);
  for (let tok = 0; tok < V; tok++) {
    const row = output.data.subarray(tok * E, (tok + 1) * E);
    if (tok < 256) row[0] = 0;
    else row.fill(0).fill(SPECIAL_SUPPRESSION, 0, 1);
  }
  tensors.push(output);

  const { tokens, types } = byteVocab();
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(o.name)],
    ['general.file_type', gguf.u32(o.tensorType === 'f32' ? 0 : 1)],
    ['llama.vocab_size', gguf.u32(V)],
    ['llama.context_length', gguf.u32(o.contextLength)],
    ['llama.embedding_length', gguf.u32(E)],
    ['llama.block_count', gguf.u32(o.blockCount)],
    ['llama.feed_forward_length', gguf.u32(F)],
    ['llama.attention.head_count', gguf.u32(o.headCount)],
    ['llama.attention.head_count_kv', gguf.u32(o.headCountKv)],
    ['llama.rope.dimension_count', gguf.u32(headDim)],
    ['llama.rope.freq_base', gguf.f32(10000)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['tokenizer.ggml.model', gguf.str('gpt2')],
    ['tokenizer.ggml.pre', gguf.str('default')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    // Required by llama.cpp for gpt2 vocabularies even when empty; no merges keeps one token per byte.
    ['tokenizer.ggml.merges', gguf.strings([])],
    ['tokenizer.ggml.bos_token_id', gguf.u32(BYTE_VOCAB.bos)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(BYTE_VOCAB.eos)],
    ['tokenizer.ggml.eot_token_id', gguf.u32(BYTE_VOCAB.imEnd)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(true)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
    ['tokenizer.chat_template', gguf.str(CHATML_TEMPLATE)],
  ];
  return { metadata, tensors, options: o };
}

/** Write the tiny model to `path` (a few hundred KB with the defaults). */
export async function writeTinyLlama(path: string, options: TinyLlamaOptions = {}): Promise<TinyLlamaInfo> {
  const { metadata, tensors, options: o } = buildTinyLlama(options);
  await writeGguf(path, metadata, tensors);
  return {
    path,
    bytes: (await stat(path)).size,
    vocabSize: BYTE_VOCAB.size,
    bosTokenId: BYTE_VOCAB.bos,
    eosTokenId: BYTE_VOCAB.eos,
    options: o,
  };
}
