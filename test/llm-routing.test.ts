/**
 * Prefix-aware and session-aware routing (`request_router_config: {request_router_class: prefix_cache_affinity}`),
 * end to end: the OpenAI app's LLM servers use it by default (the ingress's handle reads the prompt
 * of each generate call), and any deployment can ask for it in a serve config (the proxy reads the
 * prompt from the JSON body). Which replica served a request is read where it is recorded: the
 * per-replica LLM counters on the head's /metrics, and the replica id the test deployment answers.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { writeTinyLora } from '../src/llm/gguf/tiny-lora.ts';
import { json, startTestHead, type TestHead } from './harness.ts';

const example = (name: string) => fileURLToPath(new URL(`../examples/${name}/`, import.meta.url));

/** A long shared prefix (a system prompt), different from the start for different seeds. */
function systemPrompt(seed: string, chars = 400): string {
  let out = '';
  for (let i = 0; out.length < chars; i++) out += `${seed} rule ${i}: answer briefly and politely. `;
  return out.slice(0, chars);
}

let t: TestHead;
let client: OpenAI;
let loras: string;
/** Serves the adapters over HTTP: replicas download them into their model cache on first use. */
let loraServer: Server;
let loraUrl: string;
const downloads: string[] = [];

before(async () => {
  loras = await mkdtemp(join(tmpdir(), 'rayline-routing-loras-'));
  await writeTinyLora(join(loras, 'upper-a.gguf'));
  loraServer = createServer(async (req, res) => {
    downloads.push(req.url ?? '');
    if (req.url === '/loras/upper-a.gguf') res.end(await readFile(join(loras, 'upper-a.gguf')));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => loraServer.listen(0, '127.0.0.1', resolve));
  loraUrl = `http://127.0.0.1:${(loraServer.address() as AddressInfo).port}/loras`;
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'llm',
        route_prefix: '/',
        import_path: 'app.ts:build',
        runtime_env: {
          working_dir: example('llm'),
          env_vars: { RAYLINE_MODEL_CACHE: join(loras, 'cache') },
        },
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: 'tiny', model_source: 'tiny:seed=1' },
              engine_kwargs: { n_ctx: 1024, threads: 1, parallel: 2 },
              // No request_router_config: the LLM default, prefix cache affinity.
              deployment_config: { num_replicas: 2 },
              lora_config: { dynamic_lora_loading_path: loraUrl },
            },
          ],
        },
      },
      {
        name: 'sleeper',
        route_prefix: '/sleep',
        import_path: 'lifecycle.ts:app',
        deployments: [
          {
            name: 'Sleeper',
            num_replicas: 2,
            request_router_config: {
              request_router_class: 'ray.serve.llm.request_router.PrefixCacheAffinityRouter',
              request_router_kwargs: { imbalanced_threshold: 10 },
            },
          },
        ],
      },
    ],
  });
  await t.waitForApp('llm', ['RUNNING'], 90_000);
  await t.waitForApp('sleeper', ['RUNNING'], 60_000);
  client = new OpenAI({ baseURL: `${t.http}/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await t.stop();
  loraServer.close();
  await rm(loras, { recursive: true, force: true });
});

/** Generations finished per LLM replica, from the replicas' own counters on the head's /metrics. */
async function servedPerReplica(): Promise<Map<string, number>> {
  const text = await (await fetch(t.metricsUrl)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('rayline_llm_request_success_total{') || !line.includes('model_id="tiny"')) continue;
    const replica = /replica="([^"]+)"/.exec(line)?.[1];
    assert.ok(replica, line);
    out.set(replica, (out.get(replica) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** The replicas whose count grew between two readings, with how much. */
function grown(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [replica, n] of after)
    if (n > (before.get(replica) ?? 0)) out[replica] = n - (before.get(replica) ?? 0);
  return out;
}

describe('prefix-aware routing', () => {
  test('prefix affinity sends a repeated long prefix to the same replica', async () => {
    const [a, b] = [systemPrompt('alpha'), systemPrompt('bravo')];
    // One at a time: the queues stay balanced, so affinity decides every choice after the first.
    const complete = (prompt: string) =>
      client.completions.create({ model: 'tiny', prompt, max_tokens: 2, temperature: 0 });
    const chat = (system: string, question: string) =>
      client.chat.completions.create({
        model: 'tiny',
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: question },
        ],
        max_tokens: 2,
        temperature: 0,
      });

    const start = await servedPerReplica();
    for (let i = 0; i < 6; i++) await complete(`${a}\nQuestion ${i}: what is ${i} + ${i}?`);
    const afterA = await servedPerReplica();
    const servedA = grown(start, afterA);
    assert.equal(Object.keys(servedA).length, 1, `prefix A went to ${JSON.stringify(servedA)}`);
    const [replicaA] = Object.keys(servedA);
    assert.equal(servedA[replicaA], 6);

    // A different long prefix (as chat messages this time) is new to both replicas: it goes to the
    // one holding less, the other replica, and stays there.
    for (let i = 0; i < 6; i++) await chat(b, `Question ${i}: name a colour.`);
    const afterB = await servedPerReplica();
    const servedB = grown(afterA, afterB);
    assert.equal(Object.keys(servedB).length, 1, `prefix B went to ${JSON.stringify(servedB)}`);
    const [replicaB] = Object.keys(servedB);
    assert.equal(servedB[replicaB], 6);
    assert.notEqual(replicaB, replicaA);

    // Back to prefix A: its replica still has it.
    await complete(`${a}\nQuestion 99: and now?`);
    assert.deepEqual(grown(afterB, await servedPerReplica()), { [replicaA]: 1 });
  });

  test('a serve config turns it on for any deployment: the proxy reads the prompt of the JSON body', async () => {
    const ask = async (prompt: string) => {
      const res = await fetch(`${t.http}/sleep?ms=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt }),
      });
      assert.equal(res.status, 200);
      return ((await json(res)) as { replica: string }).replica;
    };
    const [a, b] = [systemPrompt('charlie'), systemPrompt('delta')];
    const servedA = new Set<string>();
    for (let i = 0; i < 6; i++) servedA.add(await ask(`${a} suffix ${i}`));
    assert.equal(servedA.size, 1, [...servedA].join(', '));
    const servedB = new Set<string>();
    for (let i = 0; i < 6; i++) servedB.add(await ask(`${b} suffix ${i}`));
    assert.equal(servedB.size, 1, [...servedB].join(', '));
    assert.notDeepEqual([...servedB], [...servedA]);
  });
});

describe('session affinity', () => {
  test('the calls of a session go to one replica whatever their prompts (x-session-id, user); sessions spread', async () => {
    const homes = new Set<string>();
    for (let s = 0; s < 12; s++) {
      const session = `session-${s}`;
      const before = await servedPerReplica();
      for (let i = 0; i < 4; i++) {
        // Prompts that share nothing, so prefix affinity has nothing to say.
        const prompt = `${i}${'xyzw'[i]} ${s}`;
        if (s % 2 === 0) {
          await client.completions.create(
            { model: 'tiny', prompt, max_tokens: 1 },
            { headers: { 'x-session-id': session } },
          );
        } else await client.completions.create({ model: 'tiny', prompt, max_tokens: 1, user: session });
      }
      const served = grown(before, await servedPerReplica());
      assert.equal(Object.keys(served).length, 1, `${session} went to ${JSON.stringify(served)}`);
      homes.add(Object.keys(served)[0]);
    }
    // 12 sessions over 2 replicas: all on one would be a 1 in 2048 chance.
    assert.equal(homes.size, 2);
  });
});

describe('LoRA adapter affinity', () => {
  test("an adapter's requests go to one replica, which downloads and loads it once, whatever their sessions", async () => {
    const before = await servedPerReplica();
    // Eight sessions would spread over both replicas (all on one: a 1 in 128 chance) without it.
    for (let i = 0; i < 8; i++) {
      const r = await client.completions.create(
        { model: 'tiny:upper-a', prompt: `${i} different`, max_tokens: 3, temperature: 0 },
        { headers: { 'x-session-id': `s${i}` } },
      );
      assert.equal(r.choices[0].text, 'AAA');
    }
    const served = grown(before, await servedPerReplica());
    assert.equal(Object.keys(served).length, 1, JSON.stringify(served));
    assert.deepEqual(downloads, ['/loras/upper-a.gguf']);
  });
});
