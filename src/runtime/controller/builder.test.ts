import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuildPool } from './builder.ts';

test('the build pool runs a few at a time, in order, and skips builds that went stale while waiting', async () => {
  const pool = new BuildPool(2);
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const job = (n: number) => () => {
    started.push(n);
    return new Promise<number>((resolve) => finish.push(() => resolve(n)));
  };
  let staleThree = false;
  const results = [1, 2, 3, 4].map((n) => pool.run(job(n), () => n === 3 && staleThree));
  assert.deepEqual(started, [1, 2]);
  assert.deepEqual([pool.running, pool.waiting], [2, 2]);
  staleThree = true;
  finish[0]();
  assert.equal(await results[0], 1);
  assert.equal(await results[2], undefined, 'stale: never started');
  assert.deepEqual(started, [1, 2, 4]);
  finish[1]();
  finish[2]();
  assert.deepEqual(await Promise.all(results), [1, 2, undefined, 4]);
  assert.deepEqual([pool.running, pool.waiting], [0, 0]);
});
