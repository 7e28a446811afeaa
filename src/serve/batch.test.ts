import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RaylineError } from '../errors.ts';
import { type BatchOptions, BatchQueue, batch } from './batch.ts';

/** A queue that records every batch it ran and answers each item with item * 2. */
function recordingQueue(options: BatchOptions) {
  const calls: number[][] = [];
  const queue = new BatchQueue<number, number>(
    'double',
    (items) => {
      calls.push([...items]);
      return items.map((i) => i * 2);
    },
    options,
  );
  return { queue, calls };
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function assertRaylineError(error: unknown, code: string): asserts error is RaylineError {
  assert.ok(error instanceof RaylineError, `expected a RaylineError, got ${String(error)}`);
  assert.equal(error.code, code);
}

/**
 * Applies a method decorator as `@decorator` on `Class.prototype[name]` would (TC39 decorators; Node
 * runs TypeScript by stripping types and cannot parse decorator syntax itself).
 */
function decorateMethod<C extends { prototype: object }>(
  cls: C,
  name: string,
  decorator: (method: never, context: ClassMethodDecoratorContext) => unknown,
): void {
  const proto = cls.prototype as Record<string, unknown>;
  const context = {
    kind: 'method',
    name,
    static: false,
    private: false,
    access: { has: (o: object) => name in o, get: (o: Record<string, unknown>) => o[name] },
    addInitializer() {},
    metadata: {},
  } as unknown as ClassMethodDecoratorContext;
  const replaced = decorator(proto[name] as never, context);
  if (replaced !== undefined) proto[name] = replaced;
}

test('a full batch fires at once, without waiting for the timeout', async () => {
  const { queue, calls } = recordingQueue({ maxBatchSize: 8, batchWaitTimeoutS: 10 });
  const started = performance.now();
  const results = await Promise.all(range(8).map((i) => queue.submit(i)));
  const elapsedMs = performance.now() - started;
  assert.deepEqual(calls, [range(8)], 'one call with all eight items, in order');
  assert.deepEqual(
    results,
    range(8).map((i) => i * 2),
    'each caller gets its own result',
  );
  assert.ok(
    elapsedMs < 1000,
    `a full batch took ${elapsedMs.toFixed(0)} ms; the 10 s timeout must not apply`,
  );
});

test('a lone item fires once batchWaitTimeoutS has passed', async () => {
  const waitS = 0.2;
  const { queue, calls } = recordingQueue({ maxBatchSize: 8, batchWaitTimeoutS: waitS });
  const started = performance.now();
  assert.equal(await queue.submit(21), 42);
  const elapsedMs = performance.now() - started;
  assert.deepEqual(calls, [[21]]);
  assert.ok(
    elapsedMs >= waitS * 1000,
    `fired after ${elapsedMs.toFixed(1)} ms, before the ${waitS * 1000} ms wait`,
  );
  assert.ok(elapsedMs < waitS * 1000 * 10, `fired after ${elapsedMs.toFixed(0)} ms, far past the wait`);
});

test('the wait counts from the first item of the batch, not the latest', async () => {
  const waitMs = 800;
  const { queue, calls } = recordingQueue({ maxBatchSize: 8, batchWaitTimeoutS: waitMs / 1000 });
  const firstAt = performance.now();
  const first = queue.submit(1);
  await sleep(waitMs / 2);
  const secondAt = performance.now();
  const second = queue.submit(2);
  assert.deepEqual(await Promise.all([first, second]), [2, 4]);
  const doneAt = performance.now();
  assert.deepEqual(calls, [[1, 2]], 'both items in one batch');
  assert.ok(doneAt - firstAt >= waitMs, `fired ${(doneAt - firstAt).toFixed(0)} ms after the first item`);
  assert.ok(
    doneAt - secondAt < waitMs,
    `fired ${(doneAt - secondAt).toFixed(0)} ms after the second item: the timer restarted at the second item`,
  );
});

test('20 items with maxBatchSize 8 run as batches of 8, 8 and 4, in arrival order', async () => {
  const { queue, calls } = recordingQueue({ maxBatchSize: 8, batchWaitTimeoutS: 0.05 });
  const results = await Promise.all(range(20).map((i) => queue.submit(i)));
  assert.deepEqual(
    calls.map((c) => c.length),
    [8, 8, 4],
  );
  assert.deepEqual(calls, [range(8), range(8, 8), range(4, 16)]);
  assert.deepEqual(
    results,
    range(20).map((i) => i * 2),
  );
});

test('defaults: maxBatchSize 10, a short wait', async () => {
  const full = recordingQueue({ batchWaitTimeoutS: 10 });
  const started = performance.now();
  await Promise.all(range(20).map((i) => full.queue.submit(i)));
  assert.deepEqual(
    full.calls.map((c) => c.length),
    [10, 10],
  );
  assert.ok(performance.now() - started < 1000);

  const lone = recordingQueue({});
  const loneStarted = performance.now();
  assert.equal(await lone.queue.submit(5), 10);
  assert.ok(performance.now() - loneStarted < 1000, 'the default wait is short (10 ms)');
});

test('a result list of the wrong length fails every caller with RL_BATCH_SIZE_MISMATCH', async () => {
  const queue = new BatchQueue<number, number>('shortChange', (items) => items.slice(1), {
    maxBatchSize: 3,
    batchWaitTimeoutS: 10,
  });
  const settled = await Promise.allSettled([queue.submit(1), queue.submit(2), queue.submit(3)]);
  assert.equal(settled.length, 3);
  for (const s of settled) {
    assert.equal(s.status, 'rejected');
    const error = (s as PromiseRejectedResult).reason;
    assertRaylineError(error, 'RL_BATCH_SIZE_MISMATCH');
    assert.equal(error.statusCode, 500);
    assert.match(error.message, /'shortChange' returned 2 results for a batch of 3 inputs/);
  }
});

test('a result that is not a list fails every caller with RL_BATCH_SIZE_MISMATCH', async () => {
  const queue = new BatchQueue<number, number>('notAList', () => 'oops' as unknown as number[], {
    maxBatchSize: 2,
    batchWaitTimeoutS: 10,
  });
  const settled = await Promise.allSettled([queue.submit(1), queue.submit(2)]);
  for (const s of settled) {
    assert.equal(s.status, 'rejected');
    const error = (s as PromiseRejectedResult).reason;
    assertRaylineError(error, 'RL_BATCH_SIZE_MISMATCH');
    assert.match(error.message, /returned a string for a batch of 2 inputs/);
  }
});

test('an exception fails every caller of that batch; the next batch still runs', async () => {
  const boom = new Error('model exploded');
  const calls: string[][] = [];
  const queue = new BatchQueue<string, string>(
    'upper',
    async (items) => {
      calls.push([...items]);
      if (items.includes('bad')) throw boom;
      return items.map((s) => s.toUpperCase());
    },
    { maxBatchSize: 2, batchWaitTimeoutS: 10 },
  );
  const settled = await Promise.allSettled(['bad', 'x', 'c', 'd'].map((s) => queue.submit(s)));
  assert.deepEqual(calls, [
    ['bad', 'x'],
    ['c', 'd'],
  ]);
  assert.deepEqual(settled, [
    { status: 'rejected', reason: boom },
    { status: 'rejected', reason: boom },
    { status: 'fulfilled', value: 'C' },
    { status: 'fulfilled', value: 'D' },
  ]);
});

test('a synchronous throw is handled like a rejection', async () => {
  let call = 0;
  const queue = new BatchQueue<number, number>(
    'sync',
    (items) => {
      call++;
      if (call === 1) throw new TypeError('sync failure');
      return items;
    },
    { maxBatchSize: 2, batchWaitTimeoutS: 10 },
  );
  const settled = await Promise.allSettled([1, 2, 3, 4].map((i) => queue.submit(i)));
  assert.deepEqual(
    settled.map((s) => s.status),
    ['rejected', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.ok((settled[0] as PromiseRejectedResult).reason instanceof TypeError);
});

/** A batched function whose batches finish only when the test releases them. */
function gatedQueue(options: BatchOptions) {
  const calls: number[][] = [];
  const gates: { resolve(): void }[] = [];
  let running = 0;
  let peak = 0;
  const queue = new BatchQueue<number, number>(
    'gated',
    async (items) => {
      calls.push([...items]);
      running++;
      peak = Math.max(peak, running);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      running--;
      return items;
    },
    options,
  );
  return { queue, calls, gates, peak: () => peak };
}

/** Waits until `condition` holds, polling; fails after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('maxConcurrentBatches 1 (the default): a second batch waits until the first has finished', async () => {
  const waitS = 0.02;
  const { queue, calls, gates, peak } = gatedQueue({ maxBatchSize: 2, batchWaitTimeoutS: waitS });
  const all = Promise.all(range(4).map((i) => queue.submit(i)));
  await until(() => calls.length === 1, 'the first batch');
  // Well past the wait: the second batch is full and due, yet must not start while the first runs.
  await sleep(waitS * 1000 * 10);
  assert.deepEqual(calls, [[0, 1]]);
  gates[0].resolve();
  await until(() => calls.length === 2, 'the second batch');
  assert.deepEqual(calls[1], [2, 3]);
  gates[1].resolve();
  assert.deepEqual(await all, range(4));
  assert.equal(peak(), 1);
});

test('maxConcurrentBatches 2 lets two batches run at once, and no more', async () => {
  const { queue, calls, gates, peak } = gatedQueue({
    maxBatchSize: 2,
    batchWaitTimeoutS: 0.01,
    maxConcurrentBatches: 2,
  });
  const all = Promise.all(range(6).map((i) => queue.submit(i)));
  await until(() => calls.length === 2, 'two concurrent batches');
  await sleep(100);
  assert.equal(calls.length, 2, 'a third batch must wait for a free slot');
  gates[0].resolve();
  await until(() => calls.length === 3, 'the third batch');
  gates[1].resolve();
  gates[2].resolve();
  assert.deepEqual(await all, range(6));
  assert.deepEqual(calls, [
    [0, 1],
    [2, 3],
    [4, 5],
  ]);
  assert.equal(peak(), 2);
});

test('batch(options, fn) wraps a function of lists into a function of one item', async () => {
  const seen: string[][] = [];
  const classify = batch(
    { maxBatchSize: 3, batchWaitTimeoutS: 10 },
    async function classify(texts: string[]) {
      seen.push(texts);
      return texts.map((t) => t.length);
    },
  );
  assert.deepEqual(await Promise.all([classify('a'), classify('bb'), classify('ccc')]), [1, 2, 3]);
  assert.deepEqual(seen, [['a', 'bb', 'ccc']]);

  const broken = batch({ maxBatchSize: 2, batchWaitTimeoutS: 10 }, function tooFew(items: number[]) {
    return items.slice(0, 1);
  });
  const settled = await Promise.allSettled([broken(1), broken(2)]);
  for (const s of settled) {
    const error = (s as PromiseRejectedResult).reason;
    assertRaylineError(error, 'RL_BATCH_SIZE_MISMATCH');
    assert.match(error.message, /'tooFew'/);
  }
});

test('as a method decorator: one queue per instance, called with that instance as this', async () => {
  class Embedder {
    readonly id: string;
    readonly calls: number[][] = [];
    constructor(id: string) {
      this.id = id;
    }
    async embed(items: number[]): Promise<string[]> {
      this.calls.push([...items]);
      return items.map((i) => `${this.id}:${i}`);
    }
  }
  decorateMethod(Embedder, 'embed', batch({ maxBatchSize: 3, batchWaitTimeoutS: 10 }));
  const a = new Embedder('a');
  const b = new Embedder('b');
  const embed = (e: Embedder, item: number) =>
    (e.embed as unknown as (item: number) => Promise<string>)(item);
  const started = performance.now();
  // Interleaved: a shared queue would mix instances and fire after 3 items; per-instance queues fill at 3 each.
  const results = await Promise.all([
    embed(a, 1),
    embed(b, 4),
    embed(a, 2),
    embed(b, 5),
    embed(a, 3),
    embed(b, 6),
  ]);
  assert.ok(performance.now() - started < 1000, 'both per-instance batches were full and fired at once');
  assert.deepEqual(results, ['a:1', 'b:4', 'a:2', 'b:5', 'a:3', 'b:6']);
  assert.deepEqual(a.calls, [[1, 2, 3]]);
  assert.deepEqual(b.calls, [[4, 5, 6]]);
});

test('as a method decorator: errors name the method', async () => {
  class Model {
    predict(items: number[]): number[] {
      return [...items, 0];
    }
  }
  decorateMethod(Model, 'predict', batch({ maxBatchSize: 1 }));
  const predict = new Model().predict as unknown as (item: number) => Promise<number>;
  await assert.rejects(predict.call(new Model(), 1), (error: unknown) => {
    assertRaylineError(error, 'RL_BATCH_SIZE_MISMATCH');
    assert.match(error.message, /'predict' returned 2 results for a batch of 1 inputs/);
    return true;
  });
});

test('invalid options throw RL_CONFIG_INVALID when declared', () => {
  const invalid: [BatchOptions, RegExp][] = [
    [{ maxBatchSize: 0 }, /maxBatchSize must be an integer >= 1, got 0/],
    [{ maxBatchSize: 2.5 }, /maxBatchSize must be an integer >= 1, got 2.5/],
    [{ batchWaitTimeoutS: -1 }, /batchWaitTimeoutS must be >= 0, got -1/],
    [{ batchWaitTimeoutS: Number.NaN }, /batchWaitTimeoutS must be >= 0, got NaN/],
    [{ maxConcurrentBatches: 0 }, /maxConcurrentBatches must be an integer >= 1, got 0/],
    [{ maxConcurrentBatches: 1.5 }, /maxConcurrentBatches must be an integer >= 1/],
  ];
  for (const [options, message] of invalid) {
    const check = (error: unknown) => {
      assertRaylineError(error, 'RL_CONFIG_INVALID');
      assert.match(error.message, message);
      return true;
    };
    assert.throws(() => new BatchQueue('q', (items: number[]) => items, options), check);
    assert.throws(() => batch(options, (items: number[]) => items), check);
    // The decorator form fails when the class is defined, not at the first call.
    class Model {
      run(items: number[]): number[] {
        return items;
      }
    }
    assert.throws(
      () => decorateMethod(Model, 'run', batch(options)),
      (error: unknown) => {
        check(error);
        assert.match((error as Error).message, /batch\(run\)/);
        return true;
      },
    );
  }
  // A zero wait is allowed: the batch fires with whatever has arrived.
  new BatchQueue('q', (items: number[]) => items, { batchWaitTimeoutS: 0 });
});

test('a zero wait fires at once with what has arrived; later items form the next batch', async () => {
  const { queue, calls } = recordingQueue({ maxBatchSize: 4, batchWaitTimeoutS: 0 });
  const results = await Promise.all(range(3).map((i) => queue.submit(i)));
  assert.deepEqual(results, [0, 2, 4]);
  assert.deepEqual(calls, [[0], [1, 2]]);
});
