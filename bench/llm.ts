/**
 * LLM benchmark (not a test): time to first token and tokens/s through Rayline (proxy, OpenAI
 * ingress, LLMServer replica, llama.cpp) against calling node-llama-cpp directly in this process,
 * on the same generated tiny model, plus aggregate tokens/s as concurrent streams grow.
 *
 *   node bench/llm.ts [--tokens 400] [--rounds 5] [--model tiny:seed=1,context=4096]
 *
 * Prints medians. The direct runs happen first, while Rayline's replicas do not exist yet, so both
 * sides have the machine to themselves.
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import pino from 'pino';
import { IncrementalDetokenizer } from '../src/llm/engine/stop.ts';
import { modelPath, parseModelSource } from '../src/llm/model-source.ts';
import { Head } from '../src/runtime/head.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '5' },
    model: { type: 'string', default: 'tiny:seed=1,context=4096' },
    threads: { type: 'string', default: '1' },
    'gpu-layers': { type: 'string', default: '0' },
  },
});
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const THREADS = Number(values.threads);
const GPU_LAYERS = Number(values['gpu-layers']);
const CONCURRENCY = [1, 4, 16];
/** Unmeasured requests before the measured ones, the same number on both sides. */
const WARMUP = 3;
const PROMPT = 'The quick brown fox jumps over the lazy dog.';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = (line: string) => process.stdout.write(`${line}\n`);

interface Run {
  ttftMs: number;
  tokensPerS: number;
}

async function direct(path: string): Promise<{ single: Run[]; aggregate: Map<number, number[]> }> {
  const llama = await getLlama({
    gpu: GPU_LAYERS > 0 ? 'auto' : false,
    build: 'never',
    maxThreads: THREADS,
    logLevel: LlamaLogLevel.error,
  });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: GPU_LAYERS });
  const context = await model.createContext({ contextSize: 1024, sequences: 16, threads: THREADS });
  const sequences = Array.from({ length: 16 }, () => context.getSequence());
  const one = async (i: number, seed: number): Promise<Run & { tokens: number }> => {
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
      if (++n === TOKENS) break;
    }
    const end = performance.now();
    return { ttftMs: first - started, tokensPerS: n / ((end - started) / 1000), tokens: n };
  };
  for (let w = 0; w < WARMUP; w++) await one(0, 1000 + w); // warm-up (JIT, caches)
  const single: Run[] = [];
  for (let r = 0; r < ROUNDS; r++) single.push(await one(0, r));
  const aggregate = new Map<number, number[]>();
  for (const c of CONCURRENCY) {
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const started = performance.now();
      const runs = await Promise.all(Array.from({ length: c }, (_, i) => one(i, r * 100 + i)));
      const total = runs.reduce((s, x) => s + x.tokens, 0);
      rates.push(total / ((performance.now() - started) / 1000));
    }
    aggregate.set(c, rates);
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { single, aggregate };
}

/** One streamed completion through the proxy; TTFT is the first chunk that carries text. */
async function streamed(http: string, seed: number): Promise<Run & { tokens: number }> {
  const started = performance.now();
  const res = await fetch(`${http}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'bench',
      prompt: PROMPT,
      max_tokens: TOKENS,
      temperature: 0.8,
      seed,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let tokens = 0;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffered += decoder.decode(bytes, { stream: true });
    const events = buffered.split('\n\n');
    buffered = events.pop() ?? '';
    for (const event of events) {
      const data = event.slice('data: '.length);
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data);
      if (!first && chunk.choices[0]?.text) first = performance.now();
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  const end = performance.now();
  return { ttftMs: first - started, tokensPerS: tokens / ((end - started) / 1000), tokens };
}

async function rayline(): Promise<{ single: Run[]; aggregate: Map<number, number[]> }> {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const head = new Head({
    log: pino({ level: 'warn' }),
    output: sink,
    logLevel: 'warn',
    http: { host: '127.0.0.1', port: 0 },
    dashboardPort: 0,
    metricsPort: 0,
    baseDir: fileURLToPath(new URL('../examples/llm/', import.meta.url)),
    accessLog: false,
  });
  const { http } = await head.start();
  try {
    const parsed = parseServeConfig({
      applications: [
        {
          name: 'llm',
          route_prefix: '/',
          import_path: 'app.ts:build',
          args: {
            llm_configs: [
              {
                model_loading_config: { model_id: 'bench', model_source: values.model },
                engine_kwargs: { n_ctx: 1024, parallel: 16, threads: THREADS, n_gpu_layers: GPU_LAYERS },
              },
            ],
          },
        },
      ],
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    head.apply(parsed.value);
    const deadline = Date.now() + 120_000;
    while (head.controller.applicationDetails().llm?.status !== 'RUNNING') {
      if (Date.now() > deadline) throw new Error('the app did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Warm-up: loads the model, and brings each process's JIT to where the direct side's is.
    for (let w = 0; w < WARMUP; w++) await streamed(http, 1000 + w);
    const single: Run[] = [];
    for (let r = 0; r < ROUNDS; r++) single.push(await streamed(http, r));
    const aggregate = new Map<number, number[]>();
    for (const c of CONCURRENCY) {
      const rates: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const started = performance.now();
        const runs = await Promise.all(Array.from({ length: c }, (_, i) => streamed(http, r * 100 + i)));
        const total = runs.reduce((s, x) => s + x.tokens, 0);
        rates.push(total / ((performance.now() - started) / 1000));
      }
      aggregate.set(c, rates);
    }
    return { single, aggregate };
  } finally {
    await head.stop();
  }
}

const path = await modelPath(parseModelSource(values.model));
out(`model ${values.model} (${path}), ${TOKENS} tokens per stream, ${ROUNDS} rounds, ${THREADS} thread(s)`);
const d = await direct(path);
const r = await rayline();
const ttftD = median(d.single.map((x) => x.ttftMs));
const ttftR = median(r.single.map((x) => x.ttftMs));
const tpsD = median(d.single.map((x) => x.tokensPerS));
const tpsR = median(r.single.map((x) => x.tokensPerS));
out(`single stream   direct: TTFT ${ttftD.toFixed(2)} ms, ${tpsD.toFixed(0)} tokens/s`);
out(`single stream  rayline: TTFT ${ttftR.toFixed(2)} ms, ${tpsR.toFixed(0)} tokens/s`);
out(`added TTFT ${(ttftR - ttftD).toFixed(2)} ms; tokens/s ratio ${(tpsR / tpsD).toFixed(3)}`);
for (const c of CONCURRENCY) {
  const a = median(d.aggregate.get(c) ?? []);
  const b = median(r.aggregate.get(c) ?? []);
  out(
    `${String(c).padStart(2)} streams: direct ${a.toFixed(0)} tokens/s, rayline ${b.toFixed(0)} tokens/s (${(b / a).toFixed(3)})`,
  );
}
