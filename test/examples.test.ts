/** The examples as users run them: real NLP packages, real replica processes, real HTTP. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { json, startTestHead, type TestHead } from './harness.ts';

const example = (name: string) => fileURLToPath(new URL(`../examples/${name}/`, import.meta.url));
let t: TestHead;

before(async () => {
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'pipeline',
        route_prefix: '/analyze',
        import_path: 'app.ts:app',
        runtime_env: { working_dir: example('pipeline') },
      },
      {
        name: 'batched',
        route_prefix: '/classify',
        import_path: 'app.ts:app',
        runtime_env: { working_dir: example('batched') },
      },
      {
        name: 'ab-router',
        route_prefix: '/ab',
        import_path: 'app.ts:app',
        runtime_env: { working_dir: example('ab-router') },
      },
    ],
  });
  for (const app of ['pipeline', 'batched', 'ab-router']) await t.waitForApp(app, ['RUNNING'], 120_000);
});

after(async () => {
  await t.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${t.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('pipeline example', () => {
  const positive =
    'The new solar farm opened this week and residents are delighted with the cleaner air. Engineers say the panels will power ten thousand homes across the valley. The project finished early and under budget, which the council called a wonderful result. Local schools plan visits to learn how the panels work.';

  test('analyzes a text: token count, sentiment and an extractive summary', async () => {
    const res = await post('/analyze', { text: positive });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.deepEqual(Object.keys(body).sort(), ['original_length', 'sentiment', 'summary']);
    assert.ok(
      Number.isInteger(body.original_length) && body.original_length > 40,
      String(body.original_length),
    );
    assert.equal(body.sentiment.label, 'POSITIVE');
    assert.ok(body.sentiment.score > 0);
    assert.ok(body.summary.length > 0 && body.summary.length < positive.length, body.summary);
    // Extractive: every summary sentence comes from the text.
    for (const sentence of body.summary.split(/(?<=\.)\s+/))
      assert.ok(positive.toLowerCase().includes(sentence.toLowerCase()), sentence);
  });

  test('negative text and short text', async () => {
    const body = await json(
      await post('/analyze', { text: 'This is terrible. I hate it and the service was awful.' }),
    );
    assert.equal(body.sentiment.label, 'NEGATIVE');
    assert.ok(body.sentiment.score < 0);
    // Under 30 words: the summary is the text itself.
    assert.equal(body.summary, 'This is terrible. I hate it and the service was awful.');
  });

  test('a request without text answers 400 naming the field', async () => {
    const res = await post('/analyze', { txt: 'oops' });
    assert.equal(res.status, 400);
    assert.match((await json(res)).message, /text/);
  });
});

describe('batched example', () => {
  test('concurrent requests are classified in full batches', async () => {
    const texts = Array.from({ length: 16 }, (_, i) =>
      i % 2 ? 'The team won the championship final' : 'The bank reported record quarterly profits',
    );
    const results = await Promise.all(texts.map((text) => post('/classify', { text }).then(json)));
    const sizes = results.map((r) => r.batch_size);
    assert.equal(Math.max(...sizes), 8, `batch sizes ${sizes}`);
    assert.ok(sizes.every((s) => s >= 1 && s <= 8));
    assert.deepEqual(new Set(results.map((r) => r.label)), new Set(['sports', 'finance']));
  });

  test('a lone request fires after the batch wait timeout', async () => {
    const started = performance.now();
    const result = await json(await post('/classify', { text: 'The new phone has a faster chip' }));
    const elapsedMs = performance.now() - started;
    assert.equal(result.batch_size, 1);
    assert.ok(elapsedMs >= 50, `answered after ${elapsedMs} ms, before the 50 ms wait`);
  });
});

describe('ab-router example', () => {
  test('splits traffic about 95/5 between the stable and experimental models', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 400; i++) {
      const body = await json(await post('/ab', { text: 'route me' }));
      counts[body.model] = (counts[body.model] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(counts).sort(), ['experimental', 'stable']);
    // Binomial(400, 0.05): mean 20, sd 4.4; these bounds are more than 3.5 sd away.
    assert.ok(counts.experimental >= 4 && counts.experimental <= 45, JSON.stringify(counts));
  });
});
