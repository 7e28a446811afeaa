/**
 * The llama.cpp engine on the generated tiny model: exact token accounting, seeds, stop strings,
 * sequences shared by concurrent requests, and cancellation that frees the sequence at once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeTinyLlama } from '../gguf/tiny-llama.ts';
import { LlamaCppEngine, plainChatPrompt } from './llama-cpp.ts';
import type { GenerateRequest, SamplingParams } from './types.ts';

const sampling = (s: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 0.8,
  topP: 1,
  maxTokens: 16,
  stop: [],
  seed: 1,
  ...s,
});

async function run(engine: LlamaCppEngine, request: GenerateRequest) {
  const generation = engine.generate(request);
  let text = '';
  let tokens = 0;
  for await (const d of generation) {
    text += d.text;
    tokens += d.tokenCount;
  }
  return { text, tokens, ...(await generation.final) };
}

describe('llama.cpp engine', () => {
  let dir: string;
  let engine: LlamaCppEngine;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rayline-engine-'));
    const { path } = await writeTinyLlama(join(dir, 'tiny.gguf'), { seed: 3 });
    // threads undefined, as when engine_kwargs leaves it out: the default (1) must hold, not
    // node-llama-cpp's own, which on a small machine makes decoding hundreds of times slower.
    engine = await LlamaCppEngine.load({
      modelPath: path,
      contextSize: 256,
      parallel: 2,
      threads: undefined,
    });
  });

  after(async () => {
    await engine?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('options left out keep the defaults', () => {
    assert.equal(engine.options.threads, 1);
    assert.equal(engine.options.gpuLayers, 0);
    assert.equal(engine.options.parallel, 2);
  });

  test('usage counts BOS plus one token per byte; deltas add up to the completion', async () => {
    const r = await run(engine, { prompt: 'héllo', sampling: sampling({ maxTokens: 24 }) });
    assert.deepEqual(r.usage, { promptTokens: 7, completionTokens: 24 });
    assert.equal(r.tokens, 24);
    assert.equal(r.finishReason, 'length');
    assert.equal(engine.countTokens('héllo'), 6);
  });

  test('same seed, same text; greedy needs no seed', async () => {
    const a = await run(engine, { prompt: 'abc', sampling: sampling({ seed: 9 }) });
    const b = await run(engine, { prompt: 'abc', sampling: sampling({ seed: 9 }) });
    assert.equal(a.text, b.text);
    const g1 = await run(engine, { prompt: 'abc', sampling: sampling({ temperature: 0, seed: undefined }) });
    const g2 = await run(engine, { prompt: 'abc', sampling: sampling({ temperature: 0, seed: undefined }) });
    assert.equal(g1.text, g2.text);
  });

  test('max_tokens 0 generates nothing; a prompt over the context is refused', async () => {
    const r = await run(engine, { prompt: 'abc', sampling: sampling({ maxTokens: 0 }) });
    assert.deepEqual(r.usage, { promptTokens: 4, completionTokens: 0 });
    await assert.rejects(run(engine, { prompt: 'x'.repeat(300), sampling: sampling() }), /context size/);
  });

  test('requests beyond the parallel sequences wait, then all finish', async () => {
    const before = engine.stats().generatedTokens;
    const all = Promise.all(
      [1, 2, 3].map((seed) => run(engine, { prompt: 'p', sampling: sampling({ seed }) })),
    );
    const results = await all;
    assert.ok(results.every((r) => r.usage.completionTokens === 16));
    assert.equal(engine.stats().generatedTokens - before, 48);
    assert.deepEqual(engine.stats(), { generatedTokens: before + 48, activeRequests: 0, queuedRequests: 0 });
  });

  test('aborting stops generation and frees the sequence; a waiting request can be aborted too', async () => {
    const controller = new AbortController();
    const generation = engine.generate({
      prompt: 'p',
      sampling: sampling({ maxTokens: 200 }),
      signal: controller.signal,
    });
    let tokens = 0;
    for await (const d of generation) {
      tokens += d.tokenCount;
      if (tokens >= 5) controller.abort();
    }
    const { usage } = await generation.final;
    assert.ok(usage.completionTokens < 200, String(usage.completionTokens));
    assert.equal(engine.stats().activeRequests, 0);

    // Two long requests hold both sequences; a third waits and is aborted while waiting.
    const holders = [new AbortController(), new AbortController()];
    const held = holders.map((c) => {
      const g = engine.generate({ prompt: 'h', sampling: sampling({ maxTokens: 200 }), signal: c.signal });
      const it = g[Symbol.asyncIterator]();
      return { first: it.next(), it };
    });
    await Promise.all(held.map((h) => h.first));
    const waiting = new AbortController();
    const queued = run(engine, { prompt: 'q', sampling: sampling(), signal: waiting.signal });
    assert.equal(engine.stats().queuedRequests, 1);
    waiting.abort(new Error('gave up'));
    await assert.rejects(queued, /gave up/);
    assert.equal(engine.stats().queuedRequests, 0);
    for (const h of held) await h.it.return?.(undefined);
    assert.equal(engine.stats().activeRequests, 0);
  });

  test('embeddings: unit vectors of the model size, deterministic, in input order, tokens counted', async () => {
    const one = await engine.embed({ input: ['héllo'] });
    assert.equal(engine.embeddingSize, 64);
    assert.equal(one.vectors[0].length, 64);
    assert.equal(one.promptTokens, 7); // BOS plus one token per byte, as in generation
    assert.ok(Math.abs(Math.hypot(...one.vectors[0]) - 1) < 1e-6);
    const batch = await engine.embed({ input: ['other', 'héllo'] });
    assert.deepEqual(batch.vectors[1], one.vectors[0]);
    assert.notDeepEqual(batch.vectors[0], batch.vectors[1]);
    assert.equal(batch.promptTokens, 6 + 7);
    await assert.rejects(engine.embed({ input: ['a', 'x'.repeat(300)] }), /input\[1\] has 301 tokens/);
    await assert.rejects(engine.embed({ input: [''] }), /input\[0\] is empty/);
  });

  test('chat messages use the model template; the fallback is plain', () => {
    const prompt = engine.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    assert.ok(Array.isArray(prompt));
    assert.equal(prompt.length, 1 + 1 + 7 + 1 + 1 + 1 + 10);
    assert.equal(plainChatPrompt([{ role: 'user', content: 'hi' }]), 'user: hi\nassistant:');
  });
});
