import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from './clock.ts';
import { RateLimiter } from './rate-limiter.ts';
import { runWorkers, WorkQueue } from './work-queue.ts';

/** Lets pending promise callbacks run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('add deduplicates a key that is already waiting', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(q.len(), 0);
});

test('a key in progress is not handed out again; added meanwhile it returns after done()', async () => {
  const q = new WorkQueue();
  q.add('a');
  assert.equal(await q.get(), 'a');
  q.add('a');
  q.add('a');
  assert.equal(q.len(), 0, 'dirty key must wait for done()');
  let next: string | undefined = 'none';
  void q.get().then((k) => {
    next = k;
  });
  await flush();
  assert.equal(next, 'none', 'no concurrent hand-out of the same key');
  q.done('a');
  await flush();
  assert.equal(next, 'a', 're-queued exactly once after done()');
  q.done('a');
  assert.equal(q.len(), 0);
});

test('done() without a re-add does not requeue', async () => {
  const q = new WorkQueue();
  q.add('a');
  await q.get();
  q.done('a');
  assert.equal(q.len(), 0);
});

test('a waiting get() receives a key added later, in FIFO order of waiters', async () => {
  const q = new WorkQueue();
  const first = q.get();
  const second = q.get();
  q.add('x');
  q.add('y');
  assert.equal(await first, 'x');
  assert.equal(await second, 'y');
});

test('addAfter adds when the delay passes, and the earliest of several delays wins', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter('a', 1000);
  q.addAfter('a', 300);
  q.addAfter('a', 5000);
  clock.advance(299);
  assert.equal(q.len(), 0);
  clock.advance(1);
  assert.equal(q.len(), 1);
  clock.advance(10_000);
  assert.equal(q.len(), 1, 'the superseded timers must not add again');
  assert.equal(clock.pending(), 0);
});

test('per-key backoff doubles from 5 ms and caps at 1000 s; forget resets it', () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter<string>({ clock, qps: 1e9, burst: 1e9 });
  const delays = Array.from({ length: 6 }, () => limiter.when('k'));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160]);
  for (let i = 0; i < 40; i++) limiter.when('k');
  assert.equal(limiter.when('k'), 1_000_000);
  assert.equal(limiter.when('other'), 5, 'keys back off independently');
  limiter.forget('k');
  assert.equal(limiter.failures('k'), 0);
  assert.equal(limiter.when('k'), 5);
});

test('global token bucket: burst of 100 at once, then 10 per second', () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter<number>({ clock });
  for (let i = 0; i < 100; i++) assert.equal(limiter.when(i), 5, `burst key ${i}`);
  // Token debts queue up: the 101st waits 100 ms, the 102nd 200 ms.
  assert.equal(limiter.when(100), 100);
  assert.equal(Math.round(limiter.when(101)), 200);
  clock.advance(1000);
  // 10 tokens came back and paid the debt of 2: 8 free retries, then waiting again.
  for (let i = 0; i < 8; i++) assert.equal(limiter.when(200 + i), 5);
  assert.equal(Math.round(limiter.when(300)), 100);
});

test('the larger of backoff and token delay wins', () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter<string>({ clock, burst: 1, qps: 1 });
  assert.equal(limiter.when('a'), 5);
  assert.equal(limiter.when('b'), 1000, 'bucket empty: 1 s beats the 5 ms backoff');
  clock.advance(100_000);
  for (let i = 0; i < 12; i++) limiter.when('a');
  clock.advance(100_000);
  assert.equal(limiter.when('a'), 5 * 2 ** 13, 'backoff beats an idle bucket');
});

test('addRateLimited delays the key by its backoff', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addRateLimited('a');
  q.addRateLimited('a');
  assert.equal(q.numRequeues('a'), 2);
  clock.advance(4);
  assert.equal(q.len(), 0);
  clock.advance(1);
  assert.equal(q.len(), 1, 'the earlier (5 ms) delay wins over the later 10 ms one');
  q.forget('a');
  assert.equal(q.numRequeues('a'), 0);
});

test('shutDown answers waiting and later get() with undefined, drops queued and delayed keys', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const waiting = q.get();
  q.shutDown();
  assert.equal(await waiting, undefined);
  q.add('a');
  q.addAfter('b', 10);
  q.addRateLimited('c');
  assert.equal(q.len(), 0);
  assert.equal(await q.get(), undefined);
  assert.equal(clock.pending(), 0);

  const q2 = new WorkQueue({ clock });
  q2.add('x');
  q2.addAfter('y', 10);
  q2.shutDown();
  clock.advance(100);
  assert.equal(await q2.get(), undefined);
  assert.equal(q2.isShutDown(), true);
});

test('runWorkers: no key runs concurrently with itself, every added key is reconciled', async () => {
  const q = new WorkQueue();
  const running = new Set<string>();
  const runs: string[] = [];
  let overlap = false;
  const ac = new AbortController();
  const done = runWorkers(
    q,
    4,
    async (key) => {
      if (running.has(key)) overlap = true;
      running.add(key);
      runs.push(key);
      await flush();
      if (runs.length < 6) q.add(key); // re-added while in progress
      await flush();
      running.delete(key);
    },
    { signal: ac.signal },
  );
  q.add('a');
  q.add('b');
  while (runs.length < 6) await flush();
  for (let i = 0; i < 5; i++) await flush();
  ac.abort();
  await done;
  assert.equal(overlap, false);
  assert.ok(runs.filter((k) => k === 'a').length >= 2);
  assert.ok(runs.filter((k) => k === 'b').length >= 2);
});

test('runWorkers: errors retry with backoff and reach onError; success forgets; requeueAfterMs requeues', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const errors: unknown[] = [];
  let calls = 0;
  const ac = new AbortController();
  const done = runWorkers(
    q,
    1,
    async () => {
      calls++;
      if (calls <= 2) throw new Error(`boom ${calls}`);
      return calls === 3 ? { requeueAfterMs: 60_000 } : undefined;
    },
    { signal: ac.signal, onError: (_k, err) => errors.push(err) },
  );
  q.add('k');
  await flush();
  assert.equal(calls, 1);
  assert.equal(q.numRequeues('k'), 1);
  clock.advance(5);
  await flush();
  assert.equal(calls, 2);
  clock.advance(9);
  await flush();
  assert.equal(calls, 2, 'second retry waits 10 ms');
  clock.advance(1);
  await flush();
  assert.equal(calls, 3);
  assert.equal(q.numRequeues('k'), 0, 'success forgets the failures');
  clock.advance(59_999);
  await flush();
  assert.equal(calls, 3);
  clock.advance(1);
  await flush();
  assert.equal(calls, 4);
  assert.deepEqual(
    errors.map((e) => (e as Error).message),
    ['boom 1', 'boom 2'],
  );
  ac.abort();
  await done;
  assert.equal(q.isShutDown(), true);
});
