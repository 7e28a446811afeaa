/**
 * Writes a tiny LoRA adapter (GGUF, llama.cpp's adapter format) for the tiny llama model: a rank-1
 * update of the output projection that lifts one byte's logit through the model's constant channel
 * (see tiny-llama.ts), so a model with the adapter writes that byte almost always and the adapter's
 * effect is plain in tests.
 */
import { stat } from 'node:fs/promises';
import { BYTE_VOCAB } from './byte-vocab.ts';
import { type GgufTensor, gguf, writeGguf } from './writer.ts';

export interface TinyLoraOptions {
  /** The byte the adapter makes the model write (default 'A'). */
  byte?: number;
  /** How far the byte's logit rises per unit of the constant channel (default 4). */
  strength?: number;
  /** The base model's embedding length (tiny-llama's default, 64). */
  embeddingLength?: number;
}

export async function writeTinyLora(
  path: string,
  options: TinyLoraOptions = {},
): Promise<{ path: string; bytes: number }> {
  const byte = options.byte ?? 'A'.charCodeAt(0);
  const E = options.embeddingLength ?? 64;
  const V = BYTE_VOCAB.size;
  if (!Number.isInteger(byte) || byte < 0 || byte > 255)
    throw new Error(`byte must be 0 to 255, got ${byte}`);
  // output.weight is [E, V] in ggml order; the update is B·A with A: [E, 1] reading the constant
  // channel 0, and B: [1, V] writing into the chosen byte's row.
  const a = new Float32Array(E);
  a[0] = 1;
  const b = new Float32Array(V);
  b[byte] = options.strength ?? 4;
  const tensors: GgufTensor[] = [
    { name: 'output.weight.lora_a', shape: [E, 1], type: 'f32', data: a },
    { name: 'output.weight.lora_b', shape: [1, V], type: 'f32', data: b },
  ];
  await writeGguf(
    path,
    [
      ['general.architecture', gguf.str('llama')],
      ['general.type', gguf.str('adapter')],
      ['general.name', gguf.str(`rayline-tiny-lora-${byte}`)],
      ['adapter.type', gguf.str('lora')],
      // alpha / rank = 1: the update applies as written.
      ['adapter.lora.alpha', gguf.f32(1)],
    ],
    tensors,
  );
  return { path, bytes: (await stat(path)).size };
}
