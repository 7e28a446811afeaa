/** Coalescing: everything decoded while the reader was busy arrives as one delta, nothing is lost. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coalesce } from './coalesce.ts';
import type { TextDelta } from './types.ts';

async function* tokens(n: number, onReturn?: () => void): AsyncGenerator<TextDelta> {
  try {
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setImmediate(r));
      yield { text: String(i % 10), tokenCount: 1 };
    }
  } finally {
    onReturn?.();
  }
}

test('a slow reader gets merged deltas with every token counted', async () => {
  const deltas: TextDelta[] = [];
  for await (const d of coalesce(tokens(50))) {
    deltas.push(d);
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(deltas.length < 50, `${deltas.length} deltas`);
  assert.equal(deltas.map((d) => d.text).join(''), Array.from({ length: 50 }, (_, i) => i % 10).join(''));
  assert.equal(
    deltas.reduce((n, d) => n + d.tokenCount, 0),
    50,
  );
});

test('leaving early stops the source; errors reach the reader', async () => {
  let stopped = false;
  for await (const _ of coalesce(tokens(1000, () => (stopped = true)))) break;
  assert.ok(stopped);
  async function* failing(): AsyncGenerator<TextDelta> {
    yield { text: 'a', tokenCount: 1 };
    throw new Error('boom');
  }
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const d of coalesce(failing())) seen.push(d.text);
  }, /boom/);
  assert.deepEqual(seen, ['a']);
});
