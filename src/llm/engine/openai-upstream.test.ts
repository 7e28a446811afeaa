/**
 * The openai-upstream engine against small HTTP servers: SSE parsing (events split across network
 * writes), sampling forwarded, usage taken from the final chunk, abort, upstream errors; and the
 * `command` form: a started server, its output in errors, and its process killed on dispose.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LLM_REQUEST_ROUTER, llmServerOptions } from '../app.ts';
import { parseOpenAIAppArgs } from '../config.ts';
import { OpenAIUpstreamEngine } from './openai-upstream.ts';
import type { Generation, SamplingParams } from './types.ts';

const fakeServer = fileURLToPath(new URL('../../../test/fixtures/fake-openai-server.ts', import.meta.url));
const sampling: SamplingParams = { temperature: 0.5, topP: 0.9, maxTokens: 3, stop: ['\n'], seed: 4 };

async function listen(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function texts(generation: Generation): Promise<string[]> {
  const out: string[] = [];
  for await (const delta of generation) out.push(delta.text);
  return out;
}

test('streams completions, forwards sampling, takes usage from the last chunk', async () => {
  const seen: Array<{ url: string; auth: string | undefined; body: Record<string, unknown> }> = [];
  const url = await listen((req, body, res) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(body) });
    res.setHeader('content-type', 'text/event-stream');
    // One event split over two writes, and two events in one write.
    res.write('data: {"choices":[{"index":0,"text":"he');
    res.write(
      'llo","finish_reason":null}]}\n\ndata: {"choices":[{"index":0,"text":" wo","finish_reason":null}]}\n\n',
    );
    res.write('data: {"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\r\n\r\n');
    res.write('data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}\n\n');
    res.end('data: [DONE]\n\n');
  });
  const engine = await OpenAIUpstreamEngine.start({ model: 'up', baseUrl: `${url}/v1/`, apiKey: 'k' });
  const generation = engine.generate({ prompt: 'hi', sampling });
  assert.deepEqual(await texts(generation), ['hello', ' wo']);
  assert.deepEqual(await generation.final, {
    finishReason: 'stop',
    usage: { promptTokens: 7, completionTokens: 5 },
  });
  assert.deepEqual(engine.stats(), { generatedTokens: 5, activeRequests: 0, queuedRequests: 0 });
  assert.equal(seen[0].url, '/v1/completions');
  assert.equal(seen[0].auth, 'Bearer k');
  assert.deepEqual(seen[0].body, {
    model: 'up',
    prompt: 'hi',
    temperature: 0.5,
    top_p: 0.9,
    max_tokens: 3,
    stop: ['\n'],
    seed: 4,
    n: 1,
    stream: true,
    stream_options: { include_usage: true },
  });
  // Chats go to the chat endpoint as messages; deltas carry content.
  const chatUrl = await listen((req, body, res) => {
    seen.push({ url: req.url ?? '', auth: undefined, body: JSON.parse(body) });
    res.write('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n');
    res.write('data: {"choices":[{"index":0,"delta":{"content":"yo"},"finish_reason":"length"}]}\n\n');
    res.end('data: [DONE]\n\n');
  });
  const chatEngine = await OpenAIUpstreamEngine.start({ model: 'up', baseUrl: `${chatUrl}/v1` });
  const chat = chatEngine.generateChat([{ role: 'user', content: 'hey' }], { ...sampling, stop: [] });
  assert.deepEqual(await texts(chat), ['yo']);
  // Without a usage chunk, the completion count is the chunks'.
  assert.deepEqual(await chat.final, {
    finishReason: 'length',
    usage: { promptTokens: 0, completionTokens: 1 },
  });
  assert.equal(seen[1].url, '/v1/chat/completions');
  assert.deepEqual(seen[1].body.messages, [{ role: 'user', content: 'hey' }]);
  assert.equal('stop' in seen[1].body, false);
});

test('embeddings go to the upstream /v1/embeddings as floats, back in index order', async () => {
  const seen: Array<Record<string, unknown>> = [];
  const url = await listen((req, body, res) => {
    seen.push({ url: req.url, ...JSON.parse(body) });
    if (req.url !== '/v1/embeddings') return res.writeHead(404).end();
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        object: 'list',
        data: [
          { object: 'embedding', index: 1, embedding: [0, 1] },
          { object: 'embedding', index: 0, embedding: [1, 0] },
        ],
        usage: { prompt_tokens: 9, total_tokens: 9 },
      }),
    );
  });
  const engine = await OpenAIUpstreamEngine.start({ model: 'emb', baseUrl: `${url}/v1` });
  assert.deepEqual(await engine.embed({ input: ['a', 'b'], dimensions: 2 }), {
    vectors: [
      [1, 0],
      [0, 1],
    ],
    promptTokens: 9,
  });
  assert.deepEqual(seen, [
    { url: '/v1/embeddings', model: 'emb', input: ['a', 'b'], encoding_format: 'float', dimensions: 2 },
  ]);
  // One vector short: an upstream fault, not the caller's.
  await assert.rejects(engine.embed({ input: ['a', 'b', 'c'] }), /answered 2 embeddings for 3 inputs/);
});

test('upstream errors keep their meaning; an abort ends the stream quietly and the upstream request', async () => {
  let closed: Promise<void> | undefined;
  const url = await listen((_req, body, res) => {
    if (JSON.parse(body).prompt === 'bad') {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: { message: 'prompt too long', type: 'invalid_request_error' } }));
      return;
    }
    closed = new Promise((resolve) => res.on('close', () => resolve()));
    res.write('data: {"choices":[{"index":0,"text":"a","finish_reason":null}]}\n\n');
  });
  const engine = await OpenAIUpstreamEngine.start({ model: 'up', baseUrl: `${url}/v1` });
  await assert.rejects(texts(engine.generate({ prompt: 'bad', sampling })), {
    code: 'RL_BAD_REQUEST',
    message: 'upstream answered 400: prompt too long',
  });
  const controller = new AbortController();
  const generation = engine.generate({ prompt: 'ok', sampling, signal: controller.signal });
  const out: string[] = [];
  for await (const delta of generation) {
    out.push(delta.text);
    controller.abort();
  }
  assert.deepEqual(out, ['a']);
  assert.deepEqual((await generation.final).usage, { promptTokens: 0, completionTokens: 1 });
  await closed; // the upstream saw its request end
  assert.equal(engine.stats().activeRequests, 0);
});

test('command: starts the server with the env passed through, streams, kills it on dispose', async () => {
  const port = await freePort();
  const before = process.env.CUDA_VISIBLE_DEVICES;
  process.env.CUDA_VISIBLE_DEVICES = '3,5';
  let engine: OpenAIUpstreamEngine;
  try {
    engine = await OpenAIUpstreamEngine.start({
      model: 'fake',
      command: [process.execPath, fakeServer, String(port)],
      port,
      startupTimeoutS: 30,
    });
  } finally {
    if (before === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
    else process.env.CUDA_VISIBLE_DEVICES = before;
  }
  const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as {
    cuda: string;
    pid: number;
  };
  assert.equal(health.cuda, '3,5');
  assert.equal(health.pid, engine.pid);
  const generation = engine.generate({ prompt: 'abc', sampling: { ...sampling, maxTokens: 4 } });
  assert.equal((await texts(generation)).join(''), 't0 t1 t2 t3 ');
  assert.deepEqual(await generation.final, {
    finishReason: 'length',
    usage: { promptTokens: 3, completionTokens: 4 },
  });
  engine.checkHealth();
  await engine.dispose();
  assert.throws(() => process.kill(health.pid, 0), { code: 'ESRCH' });
  assert.throws(
    () => engine.checkHealth(),
    /upstream command '.*fake-openai-server.ts \d+' exited with code 0/,
  );
});

test('command: a server that exits, or is not healthy in time, fails with the command and its output', async () => {
  const port = await freePort();
  await assert.rejects(
    OpenAIUpstreamEngine.start({
      model: 'fake',
      command: [process.execPath, fakeServer, String(port), '--fail'],
      port,
    }),
    (error: Error) => {
      assert.match(
        error.message,
        /^upstream command '.*fake-openai-server.ts \d+ --fail' exited with code 3/,
      );
      assert.match(error.message, /its last output:\nfake upstream: refusing to start$/);
      return true;
    },
  );
  const started = performance.now();
  await assert.rejects(
    OpenAIUpstreamEngine.start({
      model: 'fake',
      command: [process.execPath, '-e', 'console.log("loading weights"); setInterval(() => {}, 1000)'],
      port,
      healthPath: '/v1/models',
      startupTimeoutS: 0.5,
    }),
    (error: Error) => {
      assert.match(
        error.message,
        new RegExp(
          `was not healthy at http://127.0.0.1:${port}/v1/models within 0.5 s; its last output:\\nloading weights$`,
        ),
      );
      return true;
    },
  );
  assert.ok(performance.now() - started < 10_000);
});

test('LLMConfig: openai-upstream kwargs are checked; LLM servers get LLM defaults', () => {
  const config = (c: Record<string, unknown>) =>
    parseOpenAIAppArgs({
      llm_configs: [{ model_loading_config: { model_id: 'm', model_source: 'up' }, ...c }],
    }).llm_configs[0];
  const upstream = config({ engine: 'openai-upstream', engine_kwargs: { base_url: 'http://h:1/v1' } });
  assert.deepEqual(upstream.engine_kwargs, { base_url: 'http://h:1/v1' });
  assert.throws(
    () => config({ engine: 'openai-upstream', engine_kwargs: { base_url: 'http://h:1/v1', command: ['x'] } }),
    /llm_configs\[0\]\.engine_kwargs: give exactly one of base_url and command/,
  );
  assert.throws(
    () => config({ engine: 'openai-upstream', engine_kwargs: { command: ['x'], n_ctx: 5 } }),
    /llm_configs\[0\]\.engine_kwargs/,
  );
  // llama.cpp kwargs are still llama.cpp's.
  assert.throws(
    () => config({ engine_kwargs: { base_url: 'http://h:1/v1' } }),
    /llm_configs\[0\]\.engine_kwargs/,
  );

  assert.deepEqual(llmServerOptions(config({})), {
    maxOngoingRequests: 64,
    requestRouterConfig: LLM_REQUEST_ROUTER,
    userConfig: {},
  });
  assert.deepEqual(
    llmServerOptions(
      config({ deployment_config: { autoscaling_config: { min_replicas: 1, max_replicas: 4 } } }),
    ),
    {
      maxOngoingRequests: 64,
      requestRouterConfig: LLM_REQUEST_ROUTER,
      autoscalingConfig: { targetOngoingRequests: 32, minReplicas: 1, maxReplicas: 4 },
      userConfig: {},
    },
  );
  assert.deepEqual(
    llmServerOptions(
      config({
        deployment_config: { max_ongoing_requests: 8, autoscaling_config: { target_ongoing_requests: 4 } },
      }),
    ),
    {
      maxOngoingRequests: 8,
      requestRouterConfig: LLM_REQUEST_ROUTER,
      autoscalingConfig: { targetOngoingRequests: 4 },
      userConfig: {},
    },
  );
  // So does an upstream server: its replica waits for the server in reconfigure().
  assert.deepEqual(llmServerOptions(upstream), {
    maxOngoingRequests: 64,
    requestRouterConfig: LLM_REQUEST_ROUTER,
    userConfig: {},
  });
});
