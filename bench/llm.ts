/**
 * LLM benchmark (not a test): time to first token and tokens/s through Rayline (`rayline serve run`
 * in its own processes: the proxy and the model's replica, which serves the OpenAI API) against calling node-llama-cpp
 * directly in this process, on the same generated tiny model, plus aggregate tokens/s as concurrent
 * streams grow.
 *
 *   node bench/llm.ts [--tokens 400] [--rounds 9] [--model tiny:seed=1,context=4096] [--stream-batching-ms 0]
 *                     [--only json]
 *
 * With structured outputs (`response_format: json_schema`, a chat), Rayline's llama.cpp grammar is
 * measured against node-llama-cpp generating under the same grammar in this process, from the same
 * prompt tokens (the chat as Rayline's `/tokenize` formats it): added time to first token, and the
 * tokens/s ratio with grammars on. `--only json` runs just that part.
 *
 * Both sides are measured in alternation, round by round, so the machine's drift hits both; the
 * figures are medians over rounds and the median of the per-round ratios. The client is undici's
 * `request` (fetch's engine without its web streams), in this process, apart from Rayline's proxy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type GbnfJsonSchema,
  getLlama,
  LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type Token,
  TokenBias,
} from 'node-llama-cpp';
import { Agent, request } from 'undici';
import { IncrementalDetokenizer } from '../src/llm/engine/stop.ts';
import { modelPath, parseModelSource } from '../src/llm/model-source.ts';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '9' },
    model: { type: 'string', default: 'tiny:seed=1,context=4096' },
    threads: { type: 'string', default: '1' },
    'gpu-layers': { type: 'string', default: '0' },
    /** experimental_configs.stream_batching_interval_ms; unset keeps Rayline's (Ray's) default. */
    'stream-batching-ms': { type: 'string' },
    /** `json`: only the structured-output comparison. */
    only: { type: 'string' },
  },
});
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const THREADS = Number(values.threads);
const GPU_LAYERS = Number(values['gpu-layers']);
const CONCURRENCY = [1, 4, 16];
/**
 * Unmeasured short requests before the measured ones, the same on both sides: a server is measured
 * in its steady state, after its request path has been compiled, not on its first requests.
 */
const WARMUP = { requests: 50, tokens: 8 };
const PROMPT = 'The quick brown fox jumps over the lazy dog.';
/** A schema whose JSON is a few hundred tokens: twenty short strings. */
const SCHEMA = {
  type: 'object',
  properties: {
    words: { type: 'array', items: { type: 'string', maxLength: 16 }, minItems: 20, maxItems: 20 },
  },
  required: ['words'],
  additionalProperties: false,
};
/** The chat whose prompt both sides generate JSON for. */
const MESSAGES = [{ role: 'user', content: PROMPT }];
const root = fileURLToPath(new URL('..', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = (line: string) => process.stdout.write(`${line}\n`);

interface Run {
  ttftMs: number;
  tokensPerS: number;
  tokens: number;
}

type Side = (stream: number, seed: number, tokens?: number) => Promise<Run>;
/** One JSON generation under the schema's grammar, to its end. */
type JsonSide = (seed: number) => Promise<Run>;

async function directSide(
  path: string,
): Promise<{ run: Side; runJson: (input: number[]) => JsonSide; dispose: () => Promise<void> }> {
  const llama = await getLlama({
    gpu: GPU_LAYERS > 0 ? 'auto' : false,
    build: 'never',
    maxThreads: THREADS,
    logLevel: LlamaLogLevel.error,
  });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: GPU_LAYERS });
  const context = await model.createContext({ contextSize: 1024, sequences: 16, threads: THREADS });
  const sequences = Array.from({ length: 16 }, () => context.getSequence());
  const run: Side = async (i, seed, tokens = TOKENS) => {
    const sequence = sequences[i];
    const started = performance.now();
    await sequence.clearHistory();
    const input = [model.tokens.bos as Token, ...model.tokenize(PROMPT)];
    // Text, as a caller needs it and as Rayline streams it: TTFT is the first token that completes
    // a character (the tiny model's byte tokens often split one), like the first chunk with text.
    const detokenizer = new IncrementalDetokenizer((t) => model.detokenize(t as Token[]));
    let first = 0;
    let n = 0;
    for await (const token of sequence.evaluate(input, { temperature: 0.8, seed })) {
      if (detokenizer.push(token).text && first === 0) first = performance.now();
      if (++n === tokens) break;
    }
    const end = performance.now();
    return { ttftMs: first - started, tokensPerS: n / ((end - started) / 1000), tokens: n };
  };
  // The grammar Rayline builds for SCHEMA (node-llama-cpp's, ending at the JSON's end) and its ban of
  // tokens that are part of a character: the same constraints, so both sides do the same work.
  const generated = await llama.createGrammarForJsonSchema(SCHEMA as GbnfJsonSchema as never);
  const grammar = new LlamaGrammar(llama, {
    grammar: generated.grammar.replace(/ "\\n\\n\\n\\n" \[\\n\]\*$/m, ''),
  });
  const bias = new TokenBias(model.tokenizer);
  for (let t = 0; t < model.fileInfo.metadata.tokenizer.ggml.tokens.length; t++) {
    if (!model.isEogToken(t as Token) && model.detokenize([t as Token]).includes('\uFFFD'))
      bias.set(t as Token, 'never');
  }
  const runJson =
    (input: number[]): JsonSide =>
    async (seed) => {
      const sequence = sequences[0];
      const started = performance.now();
      await sequence.clearHistory();
      const detokenizer = new IncrementalDetokenizer((t) => model.detokenize(t as Token[]));
      const grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
      let first = 0;
      let n = 0;
      for await (const token of sequence.evaluate(input as Token[], {
        temperature: 0.8,
        seed,
        grammarEvaluationState,
        tokenBias: bias,
      })) {
        if (model.isEogToken(token)) break;
        if (detokenizer.push(token).text && first === 0) first = performance.now();
        if (++n === 2 * TOKENS) break;
      }
      const end = performance.now();
      return { ttftMs: first - started, tokensPerS: n / ((end - started) / 1000), tokens: n };
    };
  return {
    run,
    runJson,
    dispose: async () => {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function raylineSide(): Promise<{
  run: Side;
  runJson: JsonSide;
  promptTokens: () => Promise<number[]>;
  dispose: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'rayline-bench-llm-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      applications: [
        {
          name: 'llm',
          route_prefix: '/',
          import_path: join(root, 'examples/llm/app.ts:build'),
          args: {
            llm_configs: [
              {
                model_loading_config: { model_id: 'bench', model_source: values.model },
                engine_kwargs: { n_ctx: 1024, parallel: 16, threads: THREADS, n_gpu_layers: GPU_LAYERS },
                ...(values['stream-batching-ms'] === undefined
                  ? {}
                  : {
                      experimental_configs: {
                        stream_batching_interval_ms: Number(values['stream-batching-ms']),
                      },
                    }),
              },
            ],
          },
        },
      ],
    }),
  );
  const [port, dashboard, metrics] = [await freePort(), await freePort(), await freePort()];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(root, 'src/cli/main.ts'),
      'serve',
      'run',
      config,
      '--port',
      String(port),
      '--dashboard-port',
      String(dashboard),
      '--metrics-port',
      String(metrics),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: root },
  );
  // Even if this process dies (a closed stdout pipe, an error, a signal), Rayline's go with it.
  const orphaned = () => {
    child.kill('SIGINT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', orphaned);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => process.exit(130));
  const agent = new Agent({ connections: 32 });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (true) {
    const res = await request(`${origin}/v1/models`, { dispatcher: agent }).catch(() => undefined);
    const ok = res?.statusCode === 200;
    await res?.body.dump();
    if (ok) break;
    if (Date.now() > deadline) throw new Error('Rayline did not become ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  /** One stream through the proxy; TTFT is the first chunk that carries text. */
  const stream = async (path: string, body: Record<string, unknown>): Promise<Run> => {
    const started = performance.now();
    const res = await request(`${origin}${path}`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        model: 'bench',
        ...body,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`);
    let first = 0;
    let tokens = 0;
    let buffered = '';
    res.body.setEncoding('utf8');
    for await (const text of res.body) {
      buffered += text;
      const events = buffered.split('\n\n');
      buffered = events.pop() ?? '';
      for (const event of events) {
        const data = event.slice('data: '.length);
        if (data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        if (!first && (chunk.choices[0]?.text || chunk.choices[0]?.delta?.content)) first = performance.now();
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
    }
    const end = performance.now();
    return { ttftMs: first - started, tokensPerS: tokens / ((end - started) / 1000), tokens };
  };
  const run: Side = (_i, seed, maxTokens = TOKENS) =>
    stream('/v1/completions', { prompt: PROMPT, max_tokens: maxTokens, temperature: 0.8, seed });
  const runJson: JsonSide = (seed) =>
    stream('/v1/chat/completions', {
      messages: MESSAGES,
      max_tokens: 2 * TOKENS,
      temperature: 0.8,
      seed,
      response_format: { type: 'json_schema', json_schema: { name: 'words', schema: SCHEMA } },
    });
  const promptTokens = async () => {
    const res = await request(`${origin}/tokenize`, {
      method: 'POST',
      dispatcher: agent,
      body: JSON.stringify({ model: 'bench', messages: MESSAGES }),
    });
    return ((await res.body.json()) as { tokens: number[] }).tokens;
  };
  return {
    run,
    runJson,
    promptTokens,
    dispose: async () => {
      process.off('exit', orphaned);
      await agent.close();
      await new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGINT');
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pairs = () => ({ direct: [] as Run[], rayline: [] as Run[] });

/** Aggregate tokens/s of `streams` concurrent streams. */
async function aggregate(side: Side, streams: number, round: number): Promise<number> {
  const started = performance.now();
  const runs = await Promise.all(Array.from({ length: streams }, (_, i) => side(i, round * 100 + i)));
  return runs.reduce((s, x) => s + x.tokens, 0) / ((performance.now() - started) / 1000);
}

const path = await modelPath(parseModelSource(values.model));
const batching = values['stream-batching-ms'] ?? 'default';
out(
  `model ${values.model} (${path}), ${TOKENS} tokens per stream, ${ROUNDS} rounds, ${THREADS} thread(s), stream batching ${batching} ms`,
);
const direct = await directSide(path);
const rayline = await raylineSide();
/** One side against the other, one stream: medians over rounds and of the per-round differences. */
function report(name: string, d: Run[], y: Run[]): void {
  const tps = (x: Run[]) => median(x.map((r) => r.tokensPerS)).toFixed(0);
  const tokens = (x: Run[]) => median(x.map((r) => r.tokens));
  out(`single stream, ${name}:`);
  out(
    `  direct  TTFT ${median(d.map((x) => x.ttftMs)).toFixed(2)} ms, ${tps(d)} tokens/s (${tokens(d)} tokens)`,
  );
  out(
    `  rayline TTFT ${median(y.map((x) => x.ttftMs)).toFixed(2)} ms, ${tps(y)} tokens/s (${tokens(y)} tokens)`,
  );
  const added = median(y.map((x, i) => x.ttftMs - d[i].ttftMs));
  const ratio = median(y.map((x, i) => x.tokensPerS / d[i].tokensPerS));
  out(
    `  added TTFT ${added.toFixed(2)} ms, tokens/s ratio ${ratio.toFixed(3)} (medians of per-round figures)`,
  );
}

try {
  for (let w = 0; w < WARMUP.requests; w++) {
    await direct.run(0, 1000 + w, WARMUP.tokens);
    await rayline.run(0, 1000 + w, WARMUP.tokens);
  }
  // Structured output: the same JSON under the same grammar on both sides (same seeds, same prompt tokens).
  const jsonDirect = direct.runJson(await rayline.promptTokens());
  for (let w = 0; w < 5; w++) {
    await jsonDirect(3000 + w);
    await rayline.runJson(3000 + w);
  }
  const json = pairs();
  for (let r = 0; r < ROUNDS; r++) {
    json.direct.push(await jsonDirect(r));
    json.rayline.push(await rayline.runJson(r));
  }
  report('json_schema (grammar), in steady traffic', json.direct, json.rayline);
  if (values.only !== 'json') await plainAndConcurrent();
} finally {
  await rayline.dispose();
  await direct.dispose();
}

/** Plain completions, one stream and then concurrent ones. */
async function plainAndConcurrent(): Promise<void> {
  // Each round measures one stream per side twice: right after the other side's turn (this
  // side's processes idle until then, as a server between sparse requests), and right after one
  // short unmeasured request of its own (a server in steady traffic).
  const single = { idle: pairs(), busy: pairs() };
  for (let r = 0; r < ROUNDS; r++) {
    single.idle.direct.push(await direct.run(0, r));
    await direct.run(0, 2000 + r, WARMUP.tokens);
    single.busy.direct.push(await direct.run(0, r));
    single.idle.rayline.push(await rayline.run(0, r));
    await rayline.run(0, 2000 + r, WARMUP.tokens);
    single.busy.rayline.push(await rayline.run(0, r));
  }
  report('in steady traffic', single.busy.direct, single.busy.rayline);
  report('after idling', single.idle.direct, single.idle.rayline);
  for (const c of CONCURRENCY) {
    const d: number[] = [];
    const y: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      d.push(await aggregate(direct.run, c, r));
      y.push(await aggregate(rayline.run, c, r));
    }
    const ratio = median(y.map((x, i) => x / d[i]));
    out(
      `${String(c).padStart(2)} streams: direct ${median(d).toFixed(0)} tokens/s, rayline ${median(y).toFixed(0)} tokens/s (${ratio.toFixed(3)})`,
    );
  }
}
