/**
 * OpenAI API parity of the LLM app, through the official `openai` npm client against the llama.cpp
 * engine on the tiny generated model (one deployment, real replica process): structured outputs,
 * tool calling, logprobs, vLLM's tokenize/detokenize, and a 400 naming every parameter that is not
 * honoured. The tiny model's weights are random, so what it writes is noise unless a grammar holds
 * it; each byte is one token and it never samples EOS on its own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI, { APIError } from 'openai';
import { writeTinyLora } from '../src/llm/gguf/tiny-lora.ts';
import { json, startTestHead, type TestHead } from './harness.ts';

const MODEL = 'tiny';
const example = fileURLToPath(new URL('../examples/llm/', import.meta.url));
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

let t: TestHead;
let client: OpenAI;
/** The same model through an `openai-upstream` app whose upstream is the llama.cpp app. */
let proxy: OpenAI;
/** LoRA adapters of the tiny model: `upper-a` makes it write A's, `upper-b` B's. */
let loras: string;

before(async () => {
  loras = await mkdtemp(join(tmpdir(), 'rayline-loras-'));
  await writeTinyLora(join(loras, 'upper-a.gguf'), { byte: 'A'.charCodeAt(0) });
  await writeTinyLora(join(loras, 'upper-b.gguf'), { byte: 'B'.charCodeAt(0) });
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'llm-api',
        route_prefix: '/',
        import_path: 'app.ts:build',
        runtime_env: { working_dir: example },
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: MODEL, model_source: 'tiny:seed=1,context=8192' },
              engine_kwargs: { n_ctx: 8192, threads: 1, parallel: 2 },
              experimental_configs: { stream_batching_interval_ms: 0 },
              lora_config: { dynamic_lora_loading_path: loras, max_num_adapters_per_replica: 1 },
            },
          ],
        },
      },
      {
        name: 'llm-proxy',
        route_prefix: '/proxy',
        import_path: 'app.ts:build',
        runtime_env: { working_dir: example },
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: 'proxied', model_source: MODEL },
              engine: 'openai-upstream',
              engine_kwargs: { base_url: `${t.http}/v1` },
              experimental_configs: { stream_batching_interval_ms: 0 },
            },
          ],
        },
      },
    ],
  });
  await t.waitForApp('llm-api', ['RUNNING'], 60_000);
  await t.waitForApp('llm-proxy', ['RUNNING'], 60_000);
  client = new OpenAI({ baseURL: `${t.http}/v1`, apiKey: 'x', maxRetries: 0 });
  proxy = new OpenAI({ baseURL: `${t.http}/proxy/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await t.stop();
  await rm(loras, { recursive: true, force: true });
});

async function apiError(call: () => Promise<unknown>): Promise<APIError> {
  try {
    await call();
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  assert.fail('the call succeeded');
}

const user = (content: string) => [{ role: 'user' as const, content }];

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    age: { type: 'integer' },
    color: { enum: ['red', 'green', 'blue'] },
    tags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
    nick: { type: ['string', 'null'], maxLength: 4 },
  },
  required: ['name', 'age', 'color', 'tags'],
  additionalProperties: false,
};

/** Checks a value against `person` by hand: exact keys and each value's type and bounds. */
function assertPerson(value: Record<string, unknown>): void {
  assert.deepEqual(Object.keys(value).sort(), ['age', 'color', 'name', 'nick', 'tags']);
  assert.equal(typeof value.name, 'string');
  assert.ok([...(value.name as string)].length <= 12, JSON.stringify(value.name));
  assert.ok(Number.isInteger(value.age), String(value.age));
  assert.ok(['red', 'green', 'blue'].includes(value.color as string));
  assert.ok(
    Array.isArray(value.tags) && value.tags.length <= 3 && value.tags.every((b) => typeof b === 'boolean'),
  );
  assert.ok(value.nick === null || (typeof value.nick === 'string' && value.nick.length <= 4));
}

describe('structured outputs', () => {
  test('json_schema: the random model writes JSON matching the schema, then stops; streamed the same', async () => {
    const params = {
      model: MODEL,
      messages: user('who?'),
      max_tokens: 400,
      temperature: 0.9,
      response_format: {
        type: 'json_schema' as const,
        json_schema: { name: 'person', schema: person, strict: true },
      },
    };
    for (const seed of [1, 2, 3]) {
      const res = await client.chat.completions.create({ ...params, seed });
      assert.equal(res.choices[0].finish_reason, 'stop', `seed ${seed}`);
      assertPerson(JSON.parse(res.choices[0].message.content ?? ''));
      const stream = await client.chat.completions.create({ ...params, seed, stream: true });
      let text = '';
      let chunks = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        chunks++;
      }
      assert.equal(text, res.choices[0].message.content);
      assert.ok(chunks > 3, `${chunks} chunks`);
    }
    // Without the grammar the same request is noise, not JSON.
    const free = await client.chat.completions.create({ ...params, response_format: undefined, seed: 1 });
    assert.throws(() => JSON.parse(free.choices[0].message.content ?? ''));
  });

  test('json_object: a JSON object', async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: user('json please'),
      max_tokens: 400,
      seed: 4,
      response_format: { type: 'json_object' },
    });
    const value = JSON.parse(res.choices[0].message.content ?? '');
    assert.equal(typeof value, 'object');
    assert.ok(value !== null && !Array.isArray(value));
    assert.equal(res.choices[0].finish_reason, 'stop');
  });

  test('a schema keyword the grammar cannot enforce answers 400 naming it', async () => {
    const error = await apiError(() =>
      client.chat.completions.create({
        model: MODEL,
        messages: user('x'),
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'p',
            schema: { type: 'object', properties: { age: { type: 'integer', minimum: 0 } } },
          },
        },
      }),
    );
    assert.equal(error.status, 400);
    assert.equal(error.param, 'response_format.json_schema.schema.properties.age.minimum');
    assert.match(error.message, /minimum/);
  });
});

const tools: OpenAI.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'the weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['C', 'F'] } },
        required: ['city', 'unit'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'add',
      parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } } },
    },
  },
];

function assertArguments(name: string, args: Record<string, unknown>): void {
  if (name === 'get_weather') {
    assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
    assert.ok(typeof args.city === 'string' && args.city.length <= 10);
    assert.ok(args.unit === 'C' || args.unit === 'F');
  } else {
    assert.equal(name, 'add');
    assert.deepEqual(Object.keys(args).sort(), ['a', 'b']);
    assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b));
  }
}

describe('tool calling', () => {
  test('required and named: tool_calls with valid arguments, finish_reason tool_calls; streamed as deltas', async () => {
    const base = { model: MODEL, messages: user('weather in Paris?'), tools, max_tokens: 300, seed: 5 };
    const required = await client.chat.completions.create({
      ...base,
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    const choice = required.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls?.length, 1);
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_/);
    assertArguments(call.function.name, JSON.parse(call.function.arguments));

    const named = await client.chat.completions.create({
      ...base,
      tool_choice: { type: 'function', function: { name: 'add' } },
    });
    const namedCall = named.choices[0].message
      .tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(named.choices[0].finish_reason, 'tool_calls');
    assert.equal(namedCall.function.name, 'add');
    assertArguments('add', JSON.parse(namedCall.function.arguments));

    const stream = await client.chat.completions.create({
      ...base,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(deltas[0].index, 0);
    assert.equal(deltas[0].function?.name, 'get_weather');
    assertArguments('get_weather', JSON.parse(deltas.map((d) => d.function?.arguments ?? '').join('')));
  });

  test('auto shows the tools to the model (the tiny one answers text); none does not', async () => {
    const ask = (extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) =>
      client.chat.completions.create({
        model: MODEL,
        messages: user('hi'),
        max_tokens: 8,
        seed: 1,
        ...extra,
      });
    const plain = await ask({});
    const auto = await ask({ tools });
    const none = await ask({ tools, tool_choice: 'none' });
    assert.ok(auto.usage!.prompt_tokens > plain.usage!.prompt_tokens + 200, `${auto.usage?.prompt_tokens}`);
    assert.equal(auto.choices[0].finish_reason, 'length');
    assert.equal(auto.usage?.completion_tokens, 8);
    assert.equal(none.usage?.prompt_tokens, plain.usage?.prompt_tokens);
    assert.equal(none.choices[0].message.content, plain.choices[0].message.content);
  });

  test('tool results in the history reach the prompt; an unanswered id answers 400', async () => {
    const history: OpenAI.ChatCompletionMessageParam[] = [
      ...user('add 1 and 2'),
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'add', arguments: '{"a":1,"b":2}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '3' },
    ];
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: history,
      tools,
      max_tokens: 4,
    });
    const without = await client.chat.completions.create({
      model: MODEL,
      messages: history.slice(0, 1),
      tools,
      max_tokens: 4,
    });
    // The call and its result, in the template's syntax, are in the prompt.
    const added = bytes('||call: add({"a": 1, "b": 2})\n||result: "3"\n');
    assert.ok(
      res.usage!.prompt_tokens >= without.usage!.prompt_tokens + added,
      `${res.usage?.prompt_tokens}`,
    );
    const error = await apiError(() =>
      client.chat.completions.create({
        model: MODEL,
        messages: [...history.slice(0, 2), { role: 'tool', tool_call_id: 'call_9', content: '3' }],
        tools,
      }),
    );
    assert.equal(error.status, 400);
    assert.equal(error.param, 'messages.2.tool_call_id');
  });
});

describe('logprobs', () => {
  test('chat: one entry per generated token, the chosen token among the top ones, top_logprobs of each', async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: user('x'),
      max_tokens: 60,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      // ASCII only, so that each token's text is a whole character.
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer' } } } },
      },
    });
    const content = res.choices[0].logprobs?.content ?? [];
    assert.equal(content.length, res.usage?.completion_tokens);
    assert.equal(content.map((l) => l.token).join(''), res.choices[0].message.content);
    for (const l of content) {
      assert.equal(l.top_logprobs.length, 3);
      assert.ok(l.logprob <= 0);
      assert.deepEqual(l.bytes, [...Buffer.from(l.token)]);
      // Greedy: the chosen token is the most likely one.
      assert.equal(l.top_logprobs[0].logprob, l.logprob);
      assert.ok(l.top_logprobs[0].logprob >= l.top_logprobs[1].logprob);
    }
    const none = await client.chat.completions.create({ model: MODEL, messages: user('x'), max_tokens: 2 });
    assert.equal(none.choices[0].logprobs, null);
    const error = await apiError(() =>
      client.chat.completions.create({ model: MODEL, messages: user('x'), top_logprobs: 2 }),
    );
    assert.equal(error.param, 'top_logprobs');
  });

  test('completions: tokens, token_logprobs, top_logprobs and text_offset; streamed the same', async () => {
    const params = { model: MODEL, prompt: 'abc', max_tokens: 12, logprobs: 2, temperature: 0.8, seed: 9 };
    const res = await client.completions.create(params);
    const l = res.choices[0].logprobs!;
    assert.equal(l.tokens?.length, 12);
    assert.equal(l.token_logprobs?.length, 12);
    assert.ok(l.token_logprobs!.every((p) => p <= 0));
    assert.ok(l.top_logprobs!.every((top) => Object.keys(top).length >= 1 && Object.keys(top).length <= 2));
    assert.equal(l.text_offset?.[0], 0);
    const stream = await client.completions.create({ ...params, stream: true });
    const streamed: number[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.token_logprobs ?? []));
    assert.deepEqual(streamed, l.token_logprobs);
  });
});

describe('tokenize and detokenize', () => {
  test("vLLM's endpoints: a prompt's tokens and back, a chat's tokens as the completion counts them", async () => {
    const post = async (path: string, body: unknown) =>
      json(await fetch(`${t.http}${path}`, { method: 'POST', body: JSON.stringify(body) }));
    const tokenized = await post('/tokenize', { model: MODEL, prompt: 'héllo' });
    assert.equal(tokenized.count, bytes('héllo') + 1);
    assert.equal(tokenized.tokens.length, tokenized.count);
    const bare = await post('/tokenize', { model: MODEL, prompt: 'héllo', add_special_tokens: false });
    assert.deepEqual(bare.tokens, tokenized.tokens.slice(1));
    assert.deepEqual(await post('/detokenize', { model: MODEL, tokens: bare.tokens }), { prompt: 'héllo' });
    const messages = user('count me');
    const chat = await post('/tokenize', { model: MODEL, messages });
    const completion = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 1 });
    assert.equal(chat.count, completion.usage?.prompt_tokens);
    const bad = await fetch(`${t.http}/detokenize`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, tokens: [1, 100000] }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).error.param, 'tokens.1');
  });
});

describe('parameters not honoured', () => {
  test('each answers 400 naming it; neutral values pass', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['n', { n: 129 }],
      ['logit_bias', { logit_bias: { '65': 10 } }],
      ['reasoning_effort', { reasoning_effort: 'high' }],
      ['store', { store: true }],
      ['frobnicate', { frobnicate: 1 }],
      ['messages.0.name', { messages: [{ role: 'user', content: 'x', name: 'bob' }] }],
      ['tool_choice', { tool_choice: 'required' }],
      ['response_format', { tools, response_format: { type: 'json_object' } }],
      ['stream_options', { stream_options: { include_usage: true } }],
    ];
    for (const [param, extra] of cases) {
      const error = await apiError(() =>
        client.chat.completions.create({
          model: MODEL,
          messages: user('x'),
          max_tokens: 1,
          ...extra,
        } as never),
      );
      assert.equal(error.status, 400, param);
      assert.equal(error.param, param);
      assert.ok(error.message.includes(`${param}: `), error.message);
    }
    for (const [param, extra] of [
      ['echo', { echo: true }],
      ['best_of', { best_of: 1, n: 2 }],
      ['suffix', { suffix: 'end' }],
    ] as const) {
      const error = await apiError(() =>
        client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 1, ...extra }),
      );
      assert.equal(error.param, param);
    }
    const neutral = await client.chat.completions.create({
      model: MODEL,
      messages: user('x'),
      max_tokens: 1,
      n: 1,
      store: false,
      user: 'u1',
    });
    assert.equal(neutral.usage?.completion_tokens, 1);
  });
});

describe('LoRA adapters', () => {
  test('MODEL:ADAPTER loads the adapter on first use and generates with it; listed by /v1/models', async () => {
    const ask = (model: string) =>
      client.completions.create({ model, prompt: 'hello', max_tokens: 10, temperature: 0 });
    const base = await ask(MODEL);
    assert.notEqual(base.choices[0].text, 'A'.repeat(10));
    const a = await ask(`${MODEL}:upper-a`);
    assert.equal(a.model, `${MODEL}:upper-a`);
    assert.equal(a.choices[0].text, 'A'.repeat(10));
    // One adapter per replica: B replaces A, and A comes back when asked again.
    const chat = await client.chat.completions.create({
      model: `${MODEL}:upper-b`,
      messages: user('x'),
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(chat.choices[0].message.content, 'BBBBBB');
    assert.equal((await ask(`${MODEL}:upper-a`)).choices[0].text, 'A'.repeat(10));
    assert.equal((await ask(MODEL)).choices[0].text, base.choices[0].text);
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => [m.id, (m as { parent?: string }).parent ?? null]),
      [
        [MODEL, null],
        [`${MODEL}:upper-a`, MODEL],
        [`${MODEL}:upper-b`, MODEL],
      ],
    );
  });

  test('an unknown adapter is a 404 naming model; adapters on embeddings or a model without lora_config, a 400', async () => {
    const missing = await apiError(() => client.completions.create({ model: `${MODEL}:nope`, prompt: 'x' }));
    assert.equal(missing.status, 404);
    assert.equal(missing.param, 'model');
    assert.match(missing.message, /LoRA adapter 'tiny:nope' not found/);
    const embed = await apiError(() => client.embeddings.create({ model: `${MODEL}:upper-a`, input: 'x' }));
    assert.equal(embed.status, 400);
    assert.equal(embed.param, 'model');
    const noLora = await apiError(() => proxy.completions.create({ model: 'proxied:upper-a', prompt: 'x' }));
    assert.equal(noLora.status, 400);
    assert.equal(noLora.param, 'model');
    assert.match(noLora.message, /no lora_config/);
  });
});

describe('n', () => {
  test('n choices, each its own sample (choice 0 is the n=1 answer for the seed), the prompt counted once; streamed by index', async () => {
    const params = { model: MODEL, prompt: 'many', max_tokens: 10, temperature: 0.9, seed: 11 };
    const one = await client.completions.create(params);
    const three = await client.completions.create({ ...params, n: 3 });
    assert.deepEqual(
      three.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(three.choices[0].text, one.choices[0].text);
    assert.equal(new Set(three.choices.map((c) => c.text)).size, 3);
    assert.deepEqual(three.usage, {
      prompt_tokens: one.usage!.prompt_tokens,
      completion_tokens: 30,
      total_tokens: one.usage!.prompt_tokens + 30,
    });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('hi'),
      max_tokens: 12,
      seed: 2,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ['', ''];
    const finished: number[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? '';
        if (c.finish_reason) finished.push(c.index);
      }
      usage = chunk.usage ?? usage;
    }
    assert.deepEqual(finished.sort(), [0, 1]);
    assert.equal(usage?.completion_tokens, 24);
    const whole = await client.chat.completions.create({
      model: MODEL,
      messages: user('hi'),
      max_tokens: 12,
      seed: 2,
      n: 2,
    });
    assert.deepEqual(
      texts,
      whole.choices.map((c) => c.message.content),
    );
  });
});

test('best_of: the most likely of the candidates (highest sum of token logprobs), all counted in usage', async () => {
  const params = { model: MODEL, prompt: 'best', max_tokens: 8, temperature: 1, seed: 21 };
  const candidates = await client.completions.create({ ...params, n: 4, logprobs: 0 });
  const score = (c: OpenAI.CompletionChoice) => c.logprobs!.token_logprobs!.reduce((a, b) => a + b, 0);
  const ranked = [...candidates.choices].sort((a, b) => score(b) - score(a));
  const best = await client.completions.create({ ...params, best_of: 4 });
  assert.deepEqual(
    best.choices.map((c) => [c.index, c.text, c.logprobs]),
    [[0, ranked[0].text, null]],
  );
  assert.equal(best.usage?.completion_tokens, 32);
  const two = await client.completions.create({ ...params, best_of: 4, n: 2 });
  assert.deepEqual(
    two.choices.map((c) => c.text),
    ranked.slice(0, 2).map((c) => c.text),
  );
  const streamed = await apiError(() => client.completions.create({ ...params, best_of: 2, stream: true }));
  assert.equal(streamed.param, 'best_of');
});

describe('openai-upstream', () => {
  test('passes structured outputs, tool choices and logprobs on: the same answers through the proxy', async () => {
    const chat = {
      messages: user('json'),
      max_tokens: 200,
      seed: 6,
      response_format: {
        type: 'json_schema' as const,
        json_schema: { name: 'person', schema: person },
      },
      logprobs: true,
      top_logprobs: 2,
    };
    const a = await client.chat.completions.create({ model: MODEL, ...chat });
    const b = await proxy.chat.completions.create({ model: 'proxied', ...chat });
    assertPerson(JSON.parse(b.choices[0].message.content ?? ''));
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    assert.deepEqual(b.choices[0].logprobs, a.choices[0].logprobs);
    assert.deepEqual(b.usage, a.usage);

    const tool = {
      messages: user('add'),
      tools,
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      seed: 7,
    };
    const callA = await client.chat.completions.create({ model: MODEL, ...tool });
    const callB = await proxy.chat.completions.create({ model: 'proxied', ...tool });
    assert.equal(callB.choices[0].finish_reason, 'tool_calls');
    const fn = (r: OpenAI.ChatCompletion) =>
      (r.choices[0].message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]).map(
        (c) => c.function,
      );
    assert.deepEqual(fn(callB), fn(callA));

    const completion = { prompt: 'abc', max_tokens: 6, logprobs: 1, seed: 3 };
    const c = await client.completions.create({ model: MODEL, ...completion });
    const d = await proxy.completions.create({ model: 'proxied', ...completion });
    assert.deepEqual(d.choices[0].logprobs?.token_logprobs, c.choices[0].logprobs?.token_logprobs);

    const tokenize = async (prefix: string, model: string) =>
      json(
        await fetch(`${t.http}${prefix}/tokenize`, {
          method: 'POST',
          body: JSON.stringify({ model, prompt: 'héllo' }),
        }),
      );
    assert.deepEqual(await tokenize('/proxy', 'proxied'), await tokenize('', MODEL));
  });
});
