/** LoRA adapters on the llama.cpp engine: an adapter changes what the model writes, and the least recently used idle one is unloaded past the limit. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeTinyLlama } from '../gguf/tiny-llama.ts';
import { writeTinyLora } from '../gguf/tiny-lora.ts';
import { LlamaCppEngine } from './llama-cpp.ts';
import type { GenerateRequest } from './types.ts';

let dir: string;
let engine: LlamaCppEngine;
const lora: Record<string, string> = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rayline-lora-'));
  const { path } = await writeTinyLlama(join(dir, 'tiny.gguf'), { seed: 2 });
  for (const letter of ['A', 'B']) {
    lora[letter] = (await writeTinyLora(join(dir, `${letter}.gguf`), { byte: letter.charCodeAt(0) })).path;
  }
  engine = await LlamaCppEngine.load({
    modelPath: path,
    contextSize: 256,
    threads: 1,
    parallel: 1,
    maxAdapters: 1,
  });
});

after(async () => {
  await engine.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function text(adapter?: string): Promise<string> {
  const request: GenerateRequest = {
    prompt: 'hello',
    sampling: { temperature: 0, topP: 1, maxTokens: 12, stop: [] },
    ...(adapter ? { adapter } : {}),
  };
  let out = '';
  for await (const d of engine.generate(request)) out += d.text;
  return out;
}

test('an adapter steers the model; the base model is unchanged; one adapter kept at a time', async () => {
  const base = await text();
  assert.notEqual(base, 'A'.repeat(12));
  assert.equal(await text(lora.A), 'A'.repeat(12));
  assert.deepEqual(engine.loadedAdapters(), [lora.A]);
  assert.equal(await text(lora.B), 'B'.repeat(12));
  // maxAdapters 1: A's context went when B's came.
  assert.deepEqual(engine.loadedAdapters(), [lora.B]);
  assert.equal(await text(), base);
  assert.equal(await text(lora.A), 'A'.repeat(12));
  // A file that is no adapter of this model is a bad request naming the model parameter.
  await assert.rejects(text(join(dir, 'tiny.gguf')), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'RL_BAD_REQUEST');
    assert.match(e.message, /^model: the LoRA adapter .* could not be loaded/);
    return true;
  });
});
