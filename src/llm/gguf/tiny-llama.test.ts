/**
 * Proves the generated GGUF is a real llama.cpp model: node-llama-cpp's prebuilt CPU binary loads
 * it, its byte-level tokenizer round-trips text, and seeded sampling is reproducible.
 */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  type Token,
} from 'node-llama-cpp';
import { BYTE_VOCAB, CHATML_TEMPLATE, gpt2ByteSpellings } from './byte-vocab.ts';
import { buildTinyLlama, type TinyLlamaInfo, writeTinyLlama } from './tiny-llama.ts';
import { encodeGguf, gguf } from './writer.ts';

const SAMPLES = [
  'hello world',
  'héllo wörld ✓ 日本',
  '',
  ' leading and trailing ',
  'tabs\tand\nnewlines\r\n',
  '🙂👍🏽 emoji',
];

describe('tiny llama GGUF', () => {
  let dir: string;
  let info: TinyLlamaInfo;
  let generationMs: number;
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rayline-gguf-'));
    const started = performance.now();
    info = await writeTinyLlama(join(dir, 'tiny.gguf'), { seed: 7 });
    generationMs = performance.now() - started;
    // build: 'never' means the prebuilt @node-llama-cpp/linux-x64 binary or an error, never a
    // download or compile. One thread: the model is tiny, and more threads than free cores make
    // llama.cpp's spinning workers crawl on small CI machines.
    llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: info.path });
    context = await model.createContext({ contextSize: 256, sequences: 1 });
  });

  after(async () => {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Sample `count` tokens after BOS + prompt; the sequence is cleared first so runs are comparable. */
  async function generate(prompt: string, seed: number, count: number): Promise<Token[]> {
    const sequence = context.getSequence();
    try {
      const out: Token[] = [];
      const input = [model.tokens.bos!, ...model.tokenize(prompt)];
      for await (const token of sequence.evaluate(input, { temperature: 0.9, seed })) {
        out.push(token);
        if (out.length === count) break;
      }
      return out;
    } finally {
      sequence.dispose();
    }
  }

  test('the file is small, quick to make, and its metadata reads back', async () => {
    assert.ok(info.bytes < 2 * 1024 * 1024, `model is ${info.bytes} bytes`);
    assert.ok(generationMs < 1000, `generation took ${generationMs} ms`);
    const file = await readGgufFileInfo(info.path);
    assert.equal(file.version, 3);
    assert.equal(file.metadata.general.architecture, 'llama');
    assert.equal(file.metadata.general.alignment, 32);
    assert.equal(file.metadata.tokenizer.ggml.model, 'gpt2');
    assert.equal(file.metadata.tokenizer.ggml.tokens.length, BYTE_VOCAB.size);
    assert.equal(file.metadata.tokenizer.chat_template, CHATML_TEMPLATE);
    assert.equal(file.tensorInfo?.length, 3 + 9 * 2);
  });

  test('the same options give the same bytes; another seed gives other weights', () => {
    const encode = (seed: number) => {
      const m = buildTinyLlama({ seed });
      return Buffer.from(encodeGguf(m.metadata, m.tensors));
    };
    assert.ok(encode(3).equals(encode(3)));
    assert.ok(!encode(3).equals(encode(4)));
  });

  test('the model loads with the byte-level vocabulary', () => {
    assert.equal(model.tokens.bos, BYTE_VOCAB.bos);
    assert.equal(model.tokens.eos, BYTE_VOCAB.eos);
    assert.equal(model.tokens.shouldPrependBosToken, true);
    assert.deepEqual(model.tokenize('<|im_start|>', true), [BYTE_VOCAB.imStart]);
  });

  test('tokenize/detokenize round-trips text, one token per UTF-8 byte', () => {
    for (const text of SAMPLES) {
      const tokens = model.tokenize(text);
      const bytes = [...Buffer.from(text, 'utf8')];
      assert.deepEqual(tokens, bytes, `tokens of ${JSON.stringify(text)}`);
      assert.equal(model.detokenize(tokens), text);
    }
  });

  test('every byte spelling is a distinct single character', () => {
    const spellings = gpt2ByteSpellings();
    assert.equal(new Set(spellings).size, 256);
    assert.ok(spellings.every((s) => [...s].length === 1));
  });

  test('seeded sampling is reproducible, differs across seeds and never emits special tokens', async () => {
    const a = await generate('héllo wörld ✓ 日本', 42, 32);
    const b = await generate('héllo wörld ✓ 日本', 42, 32);
    const c = await generate('héllo wörld ✓ 日本', 43, 32);
    assert.equal(a.length, 32);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(
      [...a, ...c].every((t) => t < 256),
      'only byte tokens',
    );
  });

  test('the writer rejects a tensor whose data does not match its shape', () => {
    assert.throws(
      () =>
        encodeGguf(
          [['k', gguf.u32(1)]],
          [{ name: 't', shape: [2, 2], type: 'f32', data: new Float32Array(3) }],
        ),
      /needs 4 values/,
    );
  });

  test('f16 tensors load and generate too', async () => {
    const path = join(dir, 'tiny-f16.gguf');
    const f16 = await writeTinyLlama(path, { seed: 7, tensorType: 'f16' });
    assert.ok(f16.bytes < info.bytes);
    const header = await readFile(path);
    assert.equal(header.subarray(0, 4).toString('latin1'), 'GGUF');
    const m = await llama.loadModel({ modelPath: path });
    try {
      assert.deepEqual(m.tokenize('ok'), [0x6f, 0x6b]);
      const ctx = await m.createContext({ contextSize: 64 });
      const sequence = ctx.getSequence();
      const out: Token[] = [];
      for await (const token of sequence.evaluate([m.tokens.bos!, ...m.tokenize('ok')], {
        temperature: 0.9,
        seed: 1,
      })) {
        out.push(token);
        if (out.length === 8) break;
      }
      assert.equal(out.length, 8);
      await ctx.dispose();
    } finally {
      await m.dispose();
    }
  });
});
