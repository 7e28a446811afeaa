/** The request path through a real proxy and real replica processes. */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { json, startTestHead, type TestHead, waitFor } from './harness.ts';

let t: TestHead;

before(async () => {
  t = await startTestHead({ http: { request_timeout_s: 2, body_limit_bytes: 1024 } });
  await t.deploy({
    applications: [{ name: 'b', route_prefix: '/b', import_path: 'behaviors.ts:app' }],
  });
  await t.waitForApp('b', ['RUNNING']);
});

after(async () => {
  await t.stop();
});

const get = (path: string, init?: RequestInit) => fetch(`${t.http}${path}`, init);

async function stats(
  path = '/b/stats',
): Promise<{ started: number; completed: number; cancelled: number; peak: number; running: number }> {
  return json(await get(path));
}

/** The replica saw exactly one more cancellation, nothing completed, and nothing is left running. */
async function assertCancelledOnce(before: Awaited<ReturnType<typeof stats>>): Promise<void> {
  const after = await waitFor(
    async () => {
      const s = await stats();
      return s.cancelled === before.cancelled + 1 ? s : undefined;
    },
    10_000,
    'the replica to record the cancellation',
  );
  assert.equal(after.completed, before.completed);
  assert.equal(after.running, 0);
}

describe('HTTP through proxy and replica', () => {
  test('request object: method, path, query, headers and body reach __call__', async () => {
    const res = await get('/b/echo?x=1&y=two', {
      method: 'POST',
      body: 'payload',
      headers: { 'x-test': 'yes' },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await json(res), {
      method: 'POST',
      path: '/b/echo',
      query: { x: '1', y: 'two' },
      body: 'payload',
      header: 'yes',
    });
  });

  test('return types: string, bytes, and a response with status and headers', async () => {
    const text = await get('/b/text');
    assert.equal(await text.text(), 'plain text');
    assert.match(text.headers.get('content-type') ?? '', /text\/plain/);
    const bytes = await get('/b/bytes');
    assert.equal(bytes.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual([...new Uint8Array(await bytes.arrayBuffer())], [1, 2, 3]);
    const created = await get('/b/created');
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('x-rayline'), 'yes');
    assert.deepEqual(await json(created), { created: true });
  });

  test('unknown routes answer 404 with the known prefixes; /-/routes and /-/healthz answer', async () => {
    const res = await get('/nowhere');
    assert.equal(res.status, 404);
    const body = await json(res);
    assert.deepEqual(body.routes, ['/b']);
    assert.match(body.message, /known route prefixes: \/b/);
    assert.deepEqual(await json(await get('/-/routes')), { '/b': 'b' });
    assert.equal((await get('/-/healthz')).status, 200);
  });

  test('a user exception answers 500 naming the error, without a stack, and the next request succeeds', async () => {
    const res = await get('/b/error');
    assert.equal(res.status, 500);
    const body = await json(res);
    assert.equal(body.error, 'TypeError');
    assert.equal(body.code, 'RL_USER_EXCEPTION');
    assert.equal(body.message, 'boom from the replica');
    assert.doesNotMatch(JSON.stringify(body), /at .*behaviors\.ts/);
    const next = await get('/b/greet');
    assert.equal(next.status, 200);
  });

  test('a malformed JSON body read with request.json() answers 400 RL_BAD_REQUEST', async () => {
    const res = await get('/b/json', { method: 'POST', body: '{"text": ' });
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.equal(body.code, 'RL_BAD_REQUEST');
    assert.match(body.message, /^request body is not valid JSON: /);
  });

  test('an error carrying statusCode answers with that status', async () => {
    const res = await get('/b/bad-request');
    assert.equal(res.status, 400);
    assert.equal((await json(res)).message, 'text is required');
  });

  test('a body over the limit answers 413', async () => {
    const res = await get('/b/echo', { method: 'POST', body: 'x'.repeat(4096) });
    assert.equal(res.status, 413);
    assert.equal((await json(res)).code, 'RL_BODY_TOO_LARGE');
  });

  test('request_timeout_s answers 408 and cancels the replica work', async () => {
    const before = await stats();
    const res = await get('/b/sleep?ms=10000');
    assert.equal(res.status, 408);
    assert.equal((await json(res)).code, 'RL_TIMEOUT');
    await assertCancelledOnce(before);
  });

  test('a client that disconnects cancels its request in the replica', async () => {
    const before = await stats();
    const req = httpRequest(`${t.http}/b/sleep?ms=10000`);
    req.on('error', () => {});
    req.end();
    await waitFor(
      async () => (await stats()).started > before.started,
      10_000,
      'the replica to start the request',
    );
    req.destroy();
    await assertCancelledOnce(before);
  });

  test('streamed chunks arrive before the generator finishes', async () => {
    const res = await get('/b/stream?n=4&ms=300');
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstReceivedAt = Date.now();
    let text = new TextDecoder().decode(first.value);
    assert.match(text, /^chunk 0/);
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 4);
    // Each chunk carries the time the generator produced it; the last comes 900 ms after the first.
    const lastProducedAt = Number(/at (\d+)$/.exec(lines[3])![1]);
    assert.ok(
      firstReceivedAt < lastProducedAt,
      `the first chunk arrived at ${firstReceivedAt}, after the generator produced its last at ${lastProducedAt}`,
    );
  });

  test('a client asking for text/event-stream gets SSE framing', async () => {
    const res = await get('/b/stream?n=2&ms=10', { headers: { accept: 'text/event-stream' } });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const body = await res.text();
    const events = body.split('\n\n').filter(Boolean);
    assert.equal(events.length, 2);
    for (const [i, e] of events.entries()) assert.match(e, new RegExp(`^data: chunk ${i} at \\d+\\ndata: $`));
  });
});

describe('handles between deployments', () => {
  test('two handle calls started before awaiting run in parallel on the child', async () => {
    const { a, b } = await json(await get('/b/parallel'));
    // Each call sleeps 300 ms; they overlap when each started before the other ended.
    assert.ok(
      a.startMs < b.endMs && b.startMs < a.endMs,
      `a=[${a.startMs},${a.endMs}] b=[${b.startMs},${b.endMs}]`,
    );
  });

  test('options({ methodName }) and unawaited responses', async () => {
    const res = await get('/b/chain');
    assert.equal(res.status, 200);
    // slow() received 30, the value of the twice(15) response it was handed unawaited.
    assert.equal((await json(res)).slept.ms, 30);
  });

  test('an async generator method streams through a handle', async () => {
    assert.deepEqual(await json(await get('/b/handle-stream')), { items: [0, 1, 2, 3] });
  });

  test('flow control: a producer runs ahead of a paused consumer by at most the stream window', async () => {
    const { producedWhilePaused, consumed } = await json(await get('/b/slow-consumer'));
    assert.equal(consumed, 5);
    // 32 chunks of window, plus the one in flight when the window closed.
    assert.ok(
      producedWhilePaused >= 5 && producedWhilePaused <= 5 + 32 + 1,
      `produced ${producedWhilePaused}`,
    );
  });

  test('awaiting a streaming method gives its chunks; iterating a unary one fails instead of hanging', async () => {
    assert.deepEqual(await json(await get('/b/misuse')), {
      awaited: [0, 1, 2],
      iterated: 'RL_BAD_REQUEST',
    });
  });

  test("a handle's stream returned from __call__ streams to the HTTP client", async () => {
    const res = await get('/b/handle-stream-returned?n=4');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '0\n1\n2\n3\n');
  });

  test('a bad status or header from user code fails that request only', async () => {
    const [bad, good] = await Promise.all([get('/b/bad-status'), get('/b/sleep?ms=200')]);
    assert.equal(bad.status, 500);
    assert.match((await json(bad)).message, /response status must be an integer from 100 to 599, got 1000/);
    assert.equal(good.status, 200);
  });

  test('serve_multiplexed_model_id reaches the replica and the handle calls it makes', async () => {
    const res = await get('/b/model', { headers: { serve_multiplexed_model_id: 'model-a' } });
    assert.deepEqual(await json(res), { here: 'model-a', inherited: 'model-a', chosen: 'model-b' });
  });

  test('the child never runs more than max_ongoing_requests at once', async () => {
    // Worker has maxOngoingRequests 2; 12 concurrent calls of 150 ms each must queue at the caller.
    await Promise.all(Array.from({ length: 12 }, () => get('/b/handle-slow?ms=150').then((r) => json(r))));
    const s = await json(await get('/b/worker-stats'));
    assert.equal(s.peak, 2);
    assert.ok(s.completed >= 12);
  });
});
