/**
 * The `openai-upstream` engine proxying a real upstream: the llama.cpp-backed OpenAI app from
 * examples/llm serves at `/`, and a second app at `/proxy` on the same head points its
 * `base_url` at it. The `command` form starts `rayline serve run examples/llm/config.yaml` as the
 * replica's child process; a command that exits fails the deployment naming it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI, { type APIError } from 'openai';
import { parse } from 'yaml';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { fixturesDir, json, startTestHead, type TestHead, waitFor } from './harness.ts';
import { freePort } from './ports.ts';

const llmExample = fileURLToPath(new URL('../examples/llm/', import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

let t: TestHead;
let direct: OpenAI;
let proxy: OpenAI;
let applications: NonNullable<ServeConfigInput['applications']>;

/** An app from examples/llm at `prefix` with one model. */
function llmApp(name: string, prefix: string, llmConfig: Record<string, unknown>) {
  return {
    name,
    route_prefix: prefix,
    import_path: 'app.ts:build',
    runtime_env: { working_dir: llmExample },
    args: { llm_configs: [llmConfig] },
  };
}

before(async () => {
  t = await startTestHead();
  const example = parse(readFileSync(`${llmExample}config.yaml`, 'utf8'));
  const upstream = { ...example.applications[0], runtime_env: { working_dir: llmExample } };
  // Tokens are streamed as they are decoded (no batching interval), as these tests count chunks.
  const unbatched = { stream_batching_interval_ms: 0 };
  upstream.args.llm_configs[0].experimental_configs = unbatched;
  applications = [
    upstream,
    llmApp('proxy', '/proxy', {
      model_loading_config: { model_id: 'proxied', model_source: 'tiny-llama' },
      engine: 'openai-upstream',
      engine_kwargs: { base_url: `${t.http}/v1` },
      experimental_configs: unbatched,
    }),
  ];
  await t.deploy({ applications });
  await t.waitForApp('llm', ['RUNNING'], 60_000);
  await t.waitForApp('proxy', ['RUNNING'], 60_000);
  direct = new OpenAI({ baseURL: `${t.http}/v1`, apiKey: 'x', maxRetries: 0 });
  proxy = new OpenAI({ baseURL: `${t.http}/proxy/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await t.stop();
});

describe('openai-upstream with base_url', () => {
  test('a completion through the proxy equals the upstream one for the same seed, usage included', async () => {
    const params = { prompt: 'héllo upstream', max_tokens: 24, temperature: 0.8, seed: 9 };
    const a = await direct.completions.create({ model: 'tiny-llama', ...params });
    const b = await proxy.completions.create({ model: 'proxied', ...params });
    assert.equal(b.model, 'proxied');
    assert.ok(a.choices[0].text.length > 0);
    assert.equal(b.choices[0].text, a.choices[0].text);
    assert.equal(b.choices[0].finish_reason, 'length');
    assert.deepEqual(b.usage, a.usage);
    assert.equal(b.usage?.completion_tokens, 24);
  });

  test('penalties reach the upstream: the same penalized text through the proxy', async () => {
    const params = { prompt: 'penalize me', max_tokens: 48, temperature: 0 };
    const plain = await direct.completions.create({ model: 'tiny-llama', ...params });
    const penalized = await direct.completions.create({
      model: 'tiny-llama',
      ...params,
      frequency_penalty: 2,
    });
    assert.notEqual(penalized.choices[0].text, plain.choices[0].text);
    const proxied = await proxy.completions.create({ model: 'proxied', ...params, frequency_penalty: 2 });
    assert.equal(proxied.choices[0].text, penalized.choices[0].text);
  });

  test('chat goes through the upstream chat endpoint (its template): same text and usage', async () => {
    const params = { messages: [{ role: 'user' as const, content: 'hi ✓' }], max_tokens: 12, seed: 3 };
    const a = await direct.chat.completions.create({ model: 'tiny-llama', ...params });
    const b = await proxy.chat.completions.create({ model: 'proxied', ...params });
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    assert.deepEqual(b.usage, a.usage);
  });

  test('streaming: chunks arrive before the end, add up to the upstream text, usage last', async () => {
    const params = { prompt: 'stream me', max_tokens: 200, temperature: 0.7, seed: 5 };
    const whole = await direct.completions.create({ model: 'tiny-llama', ...params });
    const stream = await proxy.completions.create({
      model: 'proxied',
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    const arrivals: number[] = [];
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      arrivals.push(performance.now());
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    const ended = performance.now();
    assert.ok(arrivals.length > 10, `${arrivals.length} chunks`);
    assert.ok(arrivals[0] < ended, 'the first chunk came before the end');
    assert.equal(text, whole.choices[0].text);
    assert.deepEqual(usage, whole.usage);
  });

  test('a cancelled stream through the proxy stops generation upstream', async () => {
    const stats = async (): Promise<{ generatedTokens: number; activeRequests: number }> =>
      json(await fetch(`${t.http}/v1/rayline/stats?model=tiny-llama`));
    const before = await stats();
    assert.equal(before.activeRequests, 0);
    const stream = await proxy.completions.create({
      model: 'proxied',
      prompt: 'cancel me',
      max_tokens: 400,
      stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 5) break; // leaving the loop aborts the request
    const stopped = await waitFor(
      async () => {
        const s = await stats();
        return s.activeRequests === 0 ? s : undefined;
      },
      10_000,
      'the upstream generation to stop',
    );
    const generated = stopped.generatedTokens - before.generatedTokens;
    assert.ok(generated < 400, `${generated} tokens generated upstream`);
  });

  test('an upstream 400 reaches the client as a 400', async () => {
    const error = await proxy.completions
      .create({ model: 'proxied', prompt: 'x'.repeat(600), max_tokens: 16 })
      .then(
        () => undefined,
        (e: unknown) => e as APIError,
      );
    assert.equal(error?.status, 400);
    assert.match(error?.message ?? '', /context size/);
  });
});

describe('openai-upstream with command', () => {
  test('starts `rayline serve run` as the upstream, serves through it, kills it when the app goes', async () => {
    const port = await freePort();
    const command = [
      process.execPath,
      cli,
      'serve',
      'run',
      `${llmExample}config.yaml`,
      '--port',
      String(port),
    ];
    command.push('--dashboard-port', '0', '--metrics-port', '0');
    const withCommand = [
      ...applications,
      llmApp('cmd', '/cmd', {
        model_loading_config: { model_id: 'started', model_source: 'tiny-llama' },
        engine: 'openai-upstream',
        engine_kwargs: { command, port, health_path: '/v1/models', startup_timeout_s: 120 },
      }),
    ];
    await t.deploy({ applications: withCommand });
    await t.waitForApp('cmd', ['RUNNING'], 150_000);
    const started = new OpenAI({ baseURL: `${t.http}/cmd/v1`, apiKey: 'x', maxRetries: 0 });
    const params = { prompt: 'child', max_tokens: 16, temperature: 0.8, seed: 2 };
    const a = await direct.completions.create({ model: 'tiny-llama', ...params });
    const b = await started.completions.create({ model: 'started', ...params });
    assert.equal(b.choices[0].text, a.choices[0].text);
    assert.deepEqual(b.usage, a.usage);
    // The upstream answers on its own port until the app is deleted; then nothing listens there.
    assert.equal((await json(await fetch(`http://127.0.0.1:${port}/v1/models`))).data[0].id, 'tiny-llama');
    await t.deploy({ applications });
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/v1/models`).then(
          () => false,
          () => true,
        ),
      30_000,
      'the started upstream to stop',
    );
  });

  test('a command that exits fails the deployment with the command and its last output', async () => {
    const port = await freePort();
    const command = [process.execPath, `${fixturesDir}fake-openai-server.ts`, String(port), '--fail'];
    await t.deploy({
      applications: [
        ...applications,
        llmApp('failing', '/failing', {
          model_loading_config: { model_id: 'never', model_source: 'x' },
          engine: 'openai-upstream',
          engine_kwargs: { command, port },
        }),
      ],
    });
    const app = await t.waitForApp('failing', ['DEPLOY_FAILED'], 60_000);
    assert.ok(
      app.message.includes(`upstream command '${command.join(' ')}' exited with code 3`),
      app.message,
    );
    assert.match(app.message, /its last output:\nfake upstream: refusing to start/);
  });
});
