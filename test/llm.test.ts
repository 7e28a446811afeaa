/**
 * The OpenAI-compatible LLM app (examples/llm) and the custom LLM deployment (examples/custom-llm)
 * on Rayline's generated tiny llama model, driven by the official `openai` npm client: real replica
 * processes, real llama.cpp, real HTTP. The tiny model's tokenizer is one token per UTF-8 byte and
 * it never samples EOS, so token counts are exact. Also: embeddings, the LLM metrics on the head's
 * /metrics, and model sources downloaded from a loopback HTTP server.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI, { APIError } from 'openai';
import { parse } from 'yaml';
import { writeTinyLlama } from '../src/llm/gguf/tiny-llama.ts';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { json, startTestHead, type TestHead, waitFor } from './harness.ts';

const example = (name: string) => fileURLToPath(new URL(`../examples/${name}/`, import.meta.url));
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

let t: TestHead;
let client: OpenAI;
let applications: ServeConfigInput['applications'];

before(async () => {
  t = await startTestHead();
  // The example's own config, with a second model added and room for 16 parallel long streams.
  const config = parse(readFileSync(`${example('llm')}config.yaml`, 'utf8'));
  const app = config.applications[0];
  // Tokens are streamed as they are decoded (no batching interval), as these tests count chunks.
  const base = { ...app.args.llm_configs[0], experimental_configs: { stream_batching_interval_ms: 0 } };
  app.runtime_env = { working_dir: example('llm') };
  app.args.llm_configs = [
    {
      ...base,
      model_loading_config: { model_id: 'tiny-a', model_source: 'tiny:seed=1,context=8192' },
      engine_kwargs: { ...base.engine_kwargs, n_ctx: 8192, parallel: 16 },
    },
    {
      ...base,
      model_loading_config: { model_id: 'tiny-b', model_source: 'tiny:seed=2' },
      // One request at a time and one waiting: a third answers 429.
      deployment_config: { num_replicas: 1, max_ongoing_requests: 1, max_queued_requests: 1 },
    },
  ];
  applications = [
    app,
    {
      name: 'custom-llm',
      route_prefix: '/generate',
      import_path: 'app.ts:build',
      args: { model_source: 'tiny:seed=1' },
      runtime_env: { working_dir: example('custom-llm') },
    },
  ];
  await t.deploy({ applications });
  await t.waitForApp('llm', ['RUNNING'], 60_000);
  await t.waitForApp('custom-llm', ['RUNNING'], 60_000);
  client = new OpenAI({ baseURL: `${t.http}/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await t.stop();
});

async function stats(model: string): Promise<{ generatedTokens: number; activeRequests: number }> {
  return json(await fetch(`${t.http}/v1/rayline/stats?model=${model}`));
}

async function apiError(call: () => Promise<unknown>): Promise<APIError> {
  try {
    await call();
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  assert.fail('the call succeeded');
}

describe('OpenAI surface', () => {
  test('GET /v1/models lists both models', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id).sort(), ['tiny-a', 'tiny-b']);
    assert.equal(models.data[0].object, 'model');
  });

  test('completion: exact usage, same seed gives the same text', async () => {
    const prompt = 'héllo wörld';
    const ask = () =>
      client.completions.create({ model: 'tiny-a', prompt, max_tokens: 20, temperature: 0.8, seed: 7 });
    const a = await ask();
    const b = await ask();
    assert.equal(a.object, 'text_completion');
    assert.equal(a.model, 'tiny-a');
    assert.equal(a.choices[0].finish_reason, 'length');
    // BOS plus one token per UTF-8 byte.
    assert.deepEqual(a.usage, {
      prompt_tokens: bytes(prompt) + 1,
      completion_tokens: 20,
      total_tokens: bytes(prompt) + 21,
    });
    assert.ok(a.choices[0].text.length > 0);
    assert.equal(a.choices[0].text, b.choices[0].text);
    const c = await client.completions.create({
      model: 'tiny-a',
      prompt,
      max_tokens: 20,
      temperature: 0.8,
      seed: 8,
    });
    assert.notEqual(c.choices[0].text, a.choices[0].text);
  });

  test('a stop string ends the text before it, with finish_reason stop', async () => {
    const params = { model: 'tiny-a', prompt: 'abc', max_tokens: 40, temperature: 0.8, seed: 11 };
    const full = (await client.completions.create(params)).choices[0].text;
    // A two-character piece of the text (no replacement characters) from its middle.
    const at = [...full.matchAll(/[\x21-\x7e]{2}/g)].find((m) => m.index > 3)?.index;
    assert.ok(at !== undefined, `no usable stop string in ${JSON.stringify(full)}`);
    const stop = full.slice(at, at + 2);
    const cut = await client.completions.create({ ...params, stop: [stop] });
    assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
    assert.ok(cut.usage!.completion_tokens < 40);
  });

  test('frequency and presence penalties steer a greedy completion off what it repeats', async () => {
    const complete = async (penalties: { frequency_penalty?: number; presence_penalty?: number }) => {
      const r = await client.completions.create({
        model: 'tiny-a',
        prompt: 'penalize me',
        max_tokens: 64,
        temperature: 0,
        ...penalties,
      });
      return [...Buffer.from(r.choices[0].text, 'utf8')];
    };
    const distinct = (bytes: number[]) => new Set(bytes).size;
    const greedy = await complete({});
    // The tiny model's greedy text falls into a loop; penalties on what was generated break it.
    assert.deepEqual(await complete({ frequency_penalty: 0, presence_penalty: 0 }), greedy);
    for (const penalties of [{ frequency_penalty: 2 }, { presence_penalty: 2 }]) {
      const penalized = await complete(penalties);
      assert.ok(
        distinct(penalized) > distinct(greedy),
        `${JSON.stringify(penalties)}: ${distinct(penalized)} vs ${distinct(greedy)}`,
      );
    }
    // A negative penalty rewards repeating.
    assert.ok(distinct(await complete({ frequency_penalty: -2 })) < distinct(greedy));
    const error = await apiError(() =>
      client.completions.create({ model: 'tiny-a', prompt: 'x', frequency_penalty: 2.5 }),
    );
    assert.equal(error.status, 400);
    assert.equal(error.param, 'frequency_penalty');
  });

  test('chat: the ChatML template from the model metadata, exact prompt tokens', async () => {
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'hi ✓' },
    ];
    const res = await client.chat.completions.create({ model: 'tiny-a', messages, max_tokens: 12, seed: 3 });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0].message.role, 'assistant');
    assert.equal(typeof res.choices[0].message.content, 'string');
    // <s>, then per message <|im_start|> role\ncontent <|im_end|> \n, then <|im_start|> assistant\n.
    const expected =
      1 +
      messages.reduce((n, m) => n + 1 + bytes(`${m.role}\n${m.content}`) + 1 + 1, 0) +
      1 +
      bytes('assistant\n');
    assert.equal(res.usage?.prompt_tokens, expected);
    assert.equal(res.usage?.completion_tokens, 12);
  });

  test('streaming: chunks arrive before the end and add up to the unstreamed text', async () => {
    const params = { model: 'tiny-a', prompt: 'stream me', max_tokens: 200, temperature: 0.7, seed: 5 };
    const whole = await client.completions.create(params);
    const stream = await client.completions.create({ ...params, stream: true });
    const arrivals: number[] = [];
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      arrivals.push(performance.now());
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    const ended = performance.now();
    assert.ok(arrivals.length > 10, `${arrivals.length} chunks`);
    assert.ok(arrivals[0] < ended, 'the first chunk came before the end');
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, 'length');
  });

  test('chat streaming with usage: role first, content deltas, usage last', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-b',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 30,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.completion_tokens, 30);
    assert.equal(chunks.at(-2)?.choices[0].finish_reason, 'length');
  });

  test('a client without the openai library gets SSE framed by the proxy', async () => {
    const res = await fetch(`${t.http}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ model: 'tiny-b', prompt: 'x', max_tokens: 5, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    for (const e of events.slice(0, -1))
      assert.equal(JSON.parse(e.slice('data: '.length)).object, 'text_completion');
  });

  test('invalid requests answer OpenAI errors naming the parameter', async () => {
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['n', () => client.completions.create({ model: 'tiny-a', prompt: 'x', n: 0 })],
      ['temperature', () => client.completions.create({ model: 'tiny-a', prompt: 'x', temperature: 5 })],
      ['max_tokens', () => client.completions.create({ model: 'tiny-a', prompt: 'x', max_tokens: -1 })],
      ['messages', () => client.chat.completions.create({ model: 'tiny-a', messages: [] })],
      [
        'messages.0.role',
        () =>
          client.chat.completions.create({
            model: 'tiny-a',
            messages: [{ role: 'robot', content: 'x' } as unknown as OpenAI.ChatCompletionMessageParam],
          }),
      ],
    ];
    for (const [param, call] of cases) {
      const error = await apiError(call);
      assert.equal(error.status, 400, param);
      assert.equal(error.param, param);
      assert.equal((error.error as { type?: string }).type, 'invalid_request_error');
      assert.ok(error.message.includes(param), error.message);
    }
    // A prompt that does not fit the context: 400 from the engine.
    const tooLong = await apiError(() =>
      client.completions.create({ model: 'tiny-b', prompt: 'x'.repeat(600) }),
    );
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.message, /context size/);
  });

  test('an unknown model answers 404 model_not_found', async () => {
    const error = await apiError(() => client.completions.create({ model: 'nope', prompt: 'x' }));
    assert.equal(error.status, 404);
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');
    const raw = await fetch(`${t.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    });
    const body = await json(raw);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  });

  test('a full queue answers 429 in OpenAI form', async () => {
    const controller = new AbortController();
    const calls = [1, 2, 3].map(() =>
      client.completions.create(
        { model: 'tiny-b', prompt: 'busy', max_tokens: 400, stream: true },
        { signal: controller.signal },
      ),
    );
    try {
      // The first failure among the three; the other two are running or queued until aborted.
      const rejected = await new Promise<unknown>((resolve) => {
        for (const call of calls) call.catch(resolve);
      });
      assert.ok(rejected instanceof APIError, String(rejected));
      assert.equal(rejected.status, 429);
      assert.equal((rejected.error as { type?: string }).type, 'rate_limit_error');
    } finally {
      controller.abort();
      await Promise.allSettled(calls);
    }
    await waitFor(async () => (await stats('tiny-b')).activeRequests === 0, 10_000, 'tiny-b to be idle');
  });

  test('two models in one app are routed by model', async () => {
    const [a0, b0] = [await stats('tiny-a'), await stats('tiny-b')];
    const params = { prompt: 'same prompt', max_tokens: 24, temperature: 0.8, seed: 1 };
    const a = await client.completions.create({ model: 'tiny-a', ...params });
    const b = await client.completions.create({ model: 'tiny-b', ...params });
    assert.equal(a.model, 'tiny-a');
    assert.equal(b.model, 'tiny-b');
    assert.notEqual(a.choices[0].text, b.choices[0].text);
    const [a1, b1] = [await stats('tiny-a'), await stats('tiny-b')];
    assert.equal(a1.generatedTokens - a0.generatedTokens, 24);
    assert.equal(b1.generatedTokens - b0.generatedTokens, 24);
  });

  test('16 concurrent streams all complete and overlap in time', async () => {
    // Overlap is read where it happens, in the engine: how many generations run at once. (Client-side
    // arrival times also depend on how this process, which hosts the proxy too, schedules 16 readers.)
    let peak = 0;
    let done = false;
    const poll = (async () => {
      while (!done) peak = Math.max(peak, (await stats('tiny-a')).activeRequests);
    })();
    const runs = Array.from({ length: 16 }, async (_, i) => {
      const stream = await client.completions.create({
        model: 'tiny-a',
        prompt: `stream ${i}`,
        max_tokens: 400,
        seed: i,
        stream: true,
        stream_options: { include_usage: true },
      });
      let chunks = 0;
      let completionTokens = 0;
      for await (const chunk of stream) {
        chunks++;
        completionTokens = chunk.usage?.completion_tokens ?? completionTokens;
      }
      return { chunks, completionTokens };
    });
    const results = await Promise.all(runs).finally(() => {
      done = true;
    });
    await poll;
    assert.ok(
      results.every((r) => r.completionTokens === 400 && r.chunks > 2),
      JSON.stringify(results),
    );
    assert.equal(peak, 16, `at most ${peak} generations ran at once`);
  });

  test('a cancelled stream stops generation', async () => {
    const before = await stats('tiny-a');
    assert.equal(before.activeRequests, 0);
    const stream = await client.completions.create({
      model: 'tiny-a',
      prompt: 'cancel me',
      max_tokens: 6000,
      stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 5) break; // leaving the loop aborts the request
    const stopped = await waitFor(
      async () => {
        const s = await stats('tiny-a');
        return s.activeRequests === 0 ? s : undefined;
      },
      10_000,
      'the generation to stop',
    );
    const generated = stopped.generatedTokens - before.generatedTokens;
    // Measured: 20 to 40 tokens between the client's break and the engine's stop; 6000 if it ran on.
    assert.ok(generated < 1000, `${generated} tokens generated`);
    // Other work takes a while; the cancelled generation's count stays where it stopped.
    await client.completions.create({ model: 'tiny-b', prompt: 'x', max_tokens: 100 });
    assert.equal((await stats('tiny-a')).generatedTokens, stopped.generatedTokens);
  });
});

describe('one model: its replicas serve the OpenAI API themselves', () => {
  const one = () => new OpenAI({ baseURL: `${t.http}/one/v1`, apiKey: 'x', maxRetries: 0 });
  const oneStats = async (): Promise<{ generatedTokens: number; activeRequests: number }> =>
    json(await fetch(`${t.http}/one/v1/rayline/stats?model=one`));

  before(async () => {
    applications = [
      ...(applications ?? []),
      {
        name: 'one',
        route_prefix: '/one',
        import_path: 'app.ts:build',
        runtime_env: { working_dir: example('llm') },
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: 'one', model_source: 'tiny:seed=3,context=8192' },
              engine_kwargs: { n_ctx: 8192, threads: 1, parallel: 2 },
            },
          ],
        },
      },
    ];
    await t.deploy({ applications });
    await t.waitForApp('one', ['RUNNING'], 60_000);
  });

  test('one deployment, no separate ingress, the whole OpenAI surface', async () => {
    const app = t.head.controller.applicationDetails().one;
    assert.deepEqual(Object.keys(app.deployments), ['LLMServer_one']);
    assert.deepEqual(
      (await one().models.list()).data.map((m) => m.id),
      ['one'],
    );
    const embedded = await one().embeddings.create({ model: 'one', input: ['a', 'b'] });
    assert.equal(embedded.data.length, 2);
    assert.equal(embedded.usage.prompt_tokens, 4);
    const chat = await one().chat.completions.create({
      model: 'one',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 7,
    });
    assert.equal(chat.usage?.completion_tokens, 7);
  });

  test('streams in batches (50 ms by default), with exact usage; a cancelled stream stops generation', async () => {
    const stream = await one().completions.create({
      model: 'one',
      prompt: 'hello',
      max_tokens: 400,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let textChunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.text) textChunks++;
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.deepEqual(usage, { prompt_tokens: bytes('hello') + 1, completion_tokens: 400, total_tokens: 406 });
    assert.ok(text.length > 0);
    // Unbatched, a reader this close gets a chunk per token or two; batched, one per 50 ms (the tiny
    // model decodes hundreds of tokens per second even on a loaded machine).
    assert.ok(textChunks > 1 && textChunks < 100, `${textChunks} chunks with text`);

    const before = await oneStats();
    const long = await one().completions.create({
      model: 'one',
      prompt: 'x',
      max_tokens: 6000,
      stream: true,
    });
    let chunks = 0;
    for await (const _ of long) if (++chunks === 2) break;
    const stopped = await waitFor(
      async () => {
        const s = await oneStats();
        return s.activeRequests === 0 ? s : undefined;
      },
      10_000,
      'the generation to stop',
    );
    assert.ok(stopped.generatedTokens - before.generatedTokens < 1000);
  });
});

describe('an app going from one model to two and back', () => {
  test('keeps answering while its deployments change shape', async () => {
    const morph = (models: string[]) => ({
      name: 'morph',
      route_prefix: '/morph',
      import_path: 'app.ts:build',
      runtime_env: { working_dir: example('llm') },
      args: {
        llm_configs: models.map((model_id, i) => ({
          model_loading_config: { model_id, model_source: `tiny:seed=${i + 1}` },
          engine_kwargs: { n_ctx: 512, threads: 1, parallel: 2 },
        })),
      },
    });
    const client = new OpenAI({ baseURL: `${t.http}/morph/v1`, apiKey: 'x', maxRetries: 0, timeout: 20_000 });
    const deployments = () =>
      Object.keys(t.head.controller.applicationDetails().morph?.deployments ?? {}).sort();
    const base = applications ?? [];

    await t.deploy({ applications: [...base, morph(['m1'])] });
    await t.waitForApp('morph', ['RUNNING'], 60_000);
    assert.deepEqual(deployments(), ['LLMServer_m1']);

    // Requests to m1 go on, one after another, through both updates; none may fail.
    let done = false;
    const failures: string[] = [];
    let answered = 0;
    const traffic = (async () => {
      while (!done) {
        try {
          const r = await client.completions.create({ model: 'm1', prompt: 'p', max_tokens: 3 });
          assert.equal(r.usage?.completion_tokens, 3);
          answered++;
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    })();
    const settled = async (names: string[]) => {
      await waitFor(
        () => {
          const app = t.head.controller.applicationDetails().morph;
          const replicas = Object.values(app?.deployments ?? {}).flatMap((d) => d.replicas);
          return (
            app?.status === 'RUNNING' &&
            JSON.stringify(deployments()) === JSON.stringify(names) &&
            replicas.every((r) => r.state === 'RUNNING')
          );
        },
        90_000,
        `the app to settle as ${names.join(', ')}`,
      );
    };
    try {
      await t.deploy({ applications: [...base, morph(['m1', 'm2'])] });
      await settled(['LLMServer_m1', 'LLMServer_m2', 'OpenAIIngress']);
      const m2 = await client.completions.create({ model: 'm2', prompt: 'p', max_tokens: 2 });
      assert.equal(m2.usage?.completion_tokens, 2);
      await t.deploy({ applications: [...base, morph(['m1'])] });
      await settled(['LLMServer_m1']);
    } finally {
      done = true;
      await traffic;
    }
    assert.deepEqual(failures, []);
    assert.ok(answered > 0);
  });
});

describe('embeddings', () => {
  test('vectors of the model size, the same for the same input, one per input in order', async () => {
    // The openai client asks for base64 and decodes it; float is OpenAI's own default.
    const a = await client.embeddings.create({ model: 'tiny-a', input: 'héllo' });
    assert.equal(a.object, 'list');
    assert.equal(a.model, 'tiny-a');
    assert.equal(a.data.length, 1);
    assert.equal(a.data[0].embedding.length, 64); // the tiny model's embedding_length
    assert.deepEqual(a.usage, { prompt_tokens: bytes('héllo') + 1, total_tokens: bytes('héllo') + 1 });
    const batch = await client.embeddings.create({
      model: 'tiny-a',
      input: ['other', 'héllo', 'other'],
      encoding_format: 'float',
    });
    assert.deepEqual(
      batch.data.map((d) => [d.object, d.index]),
      [
        ['embedding', 0],
        ['embedding', 1],
        ['embedding', 2],
      ],
    );
    assert.deepEqual(batch.data[0].embedding, batch.data[2].embedding);
    assert.notDeepEqual(batch.data[0].embedding, batch.data[1].embedding);
    // base64 carries float32: the same vector as the floats, to float32 precision.
    assert.deepEqual(a.data[0].embedding, Array.from(Float32Array.from(batch.data[1].embedding)));
    assert.equal(batch.usage.prompt_tokens, 2 * (bytes('other') + 1) + bytes('héllo') + 1);
    // Another model, other weights: another vector for the same input.
    const b = await client.embeddings.create({ model: 'tiny-b', input: 'héllo' });
    assert.notDeepEqual(b.data[0].embedding, a.data[0].embedding);
  });

  test('invalid input answers an OpenAI 400 naming input', async () => {
    const inputs: unknown[] = ['', [], ['ok', ''], [1, 2, 3], undefined, 'x'.repeat(600)];
    for (const input of inputs) {
      const error = await apiError(() =>
        client.embeddings.create({ model: 'tiny-b', input } as OpenAI.EmbeddingCreateParams),
      );
      assert.equal(error.status, 400, JSON.stringify(input));
      // `input`, or the item at fault (`input.1`).
      assert.match(error.param ?? '', /^input(\.\d+)?$/, JSON.stringify(input));
      assert.equal((error.error as { type?: string }).type, 'invalid_request_error');
      assert.ok(error.message.includes(`${error.param}: `), error.message);
    }
    const dims = await apiError(() =>
      client.embeddings.create({ model: 'tiny-b', input: 'x', dimensions: 8 }),
    );
    assert.equal(dims.status, 400);
    assert.equal(dims.param, 'dimensions');
  });
});

describe('LLM metrics', () => {
  /** The sum of a metric's samples for one model on the head's /metrics, and its label sets. */
  async function sample(name: string, model: string, extra = '') {
    const text = await (await fetch(t.metricsUrl)).text();
    const lines = text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && l.includes(`model_id="${model}"`) && l.includes(extra));
    return { value: lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0), lines };
  }

  test('time to first token, inter-token latency and token counters, per model', async () => {
    const names = {
      prompt: 'rayline_llm_prompt_tokens_total',
      generation: 'rayline_llm_generation_tokens_total',
      success: 'rayline_llm_request_success_total',
      ttft: 'rayline_llm_time_to_first_token_seconds_count',
      itl: 'rayline_llm_inter_token_latency_seconds_count',
    };
    const read = async () => {
      const out: Record<string, number> = {};
      for (const [k, name] of Object.entries(names))
        out[k] = (await sample(name, 'tiny-a', k === 'success' ? 'finished_reason="length"' : '')).value;
      return out;
    };
    const before = await read();
    await client.completions.create({ model: 'tiny-a', prompt: 'count me', max_tokens: 20, seed: 2 });
    await client.embeddings.create({ model: 'tiny-a', input: 'abc' });
    const after = await read();
    assert.equal(after.prompt - before.prompt, bytes('count me') + 1 + bytes('abc') + 1);
    assert.equal(after.generation - before.generation, 20);
    assert.equal(after.success - before.success, 1);
    assert.equal(after.ttft - before.ttft, 1);
    // One per token after the first delta (which holds up to 4 tokens of a multi-byte character).
    const itl = after.itl - before.itl;
    assert.ok(itl >= 16 && itl <= 19, `${itl} inter-token latencies`);
    const { lines } = await sample(names.generation, 'tiny-a');
    assert.match(lines[0], /deployment="LLMServer_tiny-a"/);
    assert.match(lines[0], /application="llm"/);
    assert.match(lines[0], /replica="/);
    // The serve metrics are still there alongside.
    const text = await (await fetch(t.metricsUrl)).text();
    assert.match(text, /ray_serve_deployment_request_counter_total\{deployment="LLMServer_tiny-a"/);
  });
});

describe('model sources', () => {
  test('a missing model file fails the deployment with an error naming the source', async () => {
    await t.deploy({
      applications: [
        ...(applications ?? []),
        {
          name: 'missing',
          route_prefix: '/missing',
          import_path: 'app.ts:build',
          runtime_env: { working_dir: example('llm') },
          args: {
            llm_configs: [{ model_loading_config: { model_id: 'gone', model_source: 'models/gone.gguf' } }],
          },
        },
      ],
    });
    const app = await t.waitForApp('missing', ['DEPLOY_FAILED'], 60_000);
    assert.match(app.message, /model_source 'models\/gone.gguf' not found/);
  });
});

describe('downloaded model sources', () => {
  let dir: string;
  let server: ReturnType<typeof createServer>;
  let base: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rayline-llm-download-'));
    const { path } = await writeTinyLlama(join(dir, 'served.gguf'), { seed: 4 });
    const model = readFileSync(path);
    server = createServer((req, res) => {
      if (req.url === '/models/tiny.gguf') res.end(model);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a URL is fetched at start-up; an unreachable hub fails the deployment naming the source', async () => {
    const llmApp = (name: string, source: string, env: Record<string, string>) => ({
      name,
      route_prefix: `/${name}`,
      import_path: 'app.ts:build',
      runtime_env: {
        working_dir: example('llm'),
        env_vars: { RAYLINE_MODEL_CACHE: join(dir, 'cache'), ...env },
      },
      args: { llm_configs: [{ model_loading_config: { model_id: name, model_source: source } }] },
    });
    await t.deploy({
      applications: [
        ...(applications ?? []),
        llmApp('fetched', `${base}/models/tiny.gguf`, {}),
        // A hub where nothing listens, as a cluster without internet access sees huggingface.co.
        llmApp('unreachable', 'hf://org/repo/model.gguf', { HF_ENDPOINT: `${base}/nothing-here` }),
      ],
    });
    await t.waitForApp('fetched', ['RUNNING'], 60_000);
    const fetched = new OpenAI({ baseURL: `${t.http}/fetched/v1`, apiKey: 'x', maxRetries: 0 });
    const res = await fetched.completions.create({ model: 'fetched', prompt: 'hi', max_tokens: 5 });
    assert.equal(res.usage?.completion_tokens, 5);
    const failed = await t.waitForApp('unreachable', ['DEPLOY_FAILED'], 60_000);
    assert.match(
      failed.message,
      /model_source 'hf:\/\/org\/repo\/model.gguf': downloading http:.*failed: HTTP 404/,
    );
  });
});

describe('custom LLM deployment', () => {
  test('answers {text, tokens}', async () => {
    const res = await fetch(`${t.http}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', temperature: 0.7, max_tokens: 12 }),
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.tokens, 12);
    assert.equal(typeof body.text, 'string');
  });

  test('a bad field answers 400 naming it', async () => {
    const res = await fetch(`${t.http}/generate`, { method: 'POST', body: JSON.stringify({ prompt: 1 }) });
    assert.equal(res.status, 400);
    assert.match((await json(res)).message, /prompt/);
  });
});
