/**
 * Scenario 8: the OpenAI-compatible LLM example as a RayService (config/samples/rayservice_llm_tiny.yaml:
 * llama.cpp on CPU, Rayline's tiny generated model). A streamed chat completion through the serve
 * service arrives as OpenAI's server-sent events, with usage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClusterClient } from './client.ts';
import {
  apply,
  condition,
  deleteAndWait,
  installOperator,
  type KubeObject,
  kubectlJson,
  saveLogs,
  waitFor,
} from './support.ts';

const name = 'llm-tiny';
const base = `http://${name}-serve-svc.default.svc.cluster.local:8000`;

describe('the LLM example as a RayService', () => {
  let client: ClusterClient;

  before(async () => {
    await installOperator();
    client = await ClusterClient.start('e2e-llm-client');
    await apply({ file: 'config/samples/rayservice_llm_tiny.yaml' });
    await waitFor(
      'RayService llm-tiny Ready',
      async () =>
        condition(await kubectlJson<KubeObject>(['get', 'rayservice', name]), 'Ready')?.status === 'True',
      600_000,
      1000,
    );
    await waitFor(
      'the serve service to route',
      async () => (await client.request(`${base}/v1/models`)).status === 200,
      60_000,
    );
  });

  after(async () => {
    await saveLogs('llm', 'default', `rayline.dev/cluster`);
    await deleteAndWait('rayservice', name, 'default', 'rayline.dev/cluster');
    await client?.delete();
  });

  test('lists the model', async () => {
    const models = JSON.parse((await client.request(`${base}/v1/models`)).body);
    assert.deepEqual(
      models.data.map((m: { id: string }) => m.id),
      ['tiny-llama'],
    );
  });

  test('streams a chat completion as server-sent events, with usage', async () => {
    const answer = await client.request(`${base}/v1/chat/completions`, {
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'Say hello.' }],
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.headers['content-type'] ?? '', /^text\/event-stream/);
    const events = answer.body
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice('data: '.length));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason;
    const usage = chunks.at(-1).usage;
    assert.ok(chunks.length >= 2, `several chunks, got ${chunks.length}`);
    assert.ok(text.length > 0, 'some text');
    assert.ok(finish === 'length' || finish === 'stop', `finish_reason ${finish}`);
    assert.equal(usage.completion_tokens, finish === 'length' ? 24 : usage.completion_tokens);
    assert.ok(usage.prompt_tokens > 0);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });
});
