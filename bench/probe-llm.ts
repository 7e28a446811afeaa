import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Head } from '../src/runtime/head.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';
import { probe } from '../src/probe-tmp.ts';
const PROMPT = 'The quick brown fox jumps over the lazy dog.';
const sink = new Writable({ write: (_c, _e, done) => done() });
const head = new Head({
  log: pino({ level: 'warn' }), output: sink, logLevel: 'warn',
  http: { host: '127.0.0.1', port: 0 }, dashboardPort: 0, metricsPort: 0,
  baseDir: fileURLToPath(new URL('../examples/llm/', import.meta.url)), accessLog: false,
});
const { http } = await head.start();
const parsed = parseServeConfig({ applications: [{ name: 'llm', route_prefix: '/', import_path: 'app.ts:build',
  args: { llm_configs: [{ model_loading_config: { model_id: 'bench', model_source: 'tiny:seed=1,context=4096' },
    engine_kwargs: { n_ctx: 1024, parallel: 16, threads: 1, n_gpu_layers: 0 } }] } }] });
if (!parsed.ok) throw new Error('bad');
head.apply(parsed.value);
while (head.controller.applicationDetails().llm?.status !== 'RUNNING') await new Promise((r) => setTimeout(r, 50));
const N = Number(process.env.N ?? 8);
for (let r = 0; r < N; r++) {
  probe('client.start', true);
  const res = await fetch(`${http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', prompt: PROMPT, max_tokens: Number(process.env.TOK ?? 400), temperature: 0.8, seed: r, stream: true, stream_options: { include_usage: true } }) });
  probe('client.headers');
  let first = false;
  for await (const bytes of res.body!) {
    const t = new TextDecoder().decode(bytes);
    if (!first && t.includes('"text":"') && !t.includes('"text":""')) { probe('client.firsttext'); first = true; }
  }
  probe('client.end');
  await new Promise((r) => setTimeout(r, 100));
}
await head.stop();
