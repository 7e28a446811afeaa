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

/** A source the test feeds by hand: `push` adds tokens, `end` finishes it. */
function manualSource() {
  const queue: TextDelta[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  async function* source(): AsyncGenerator<TextDelta> {
    while (true) {
      const next = queue.shift();
      if (next) yield next;
      else if (ended) return;
      else await new Promise<void>((r) => (wake = r));
    }
  }
  return {
    source: source(),
    push: (...texts: string[]) => {
      for (const text of texts) queue.push({ text, tokenCount: 1 });
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
  };
}

test('with an interval: the first delta leaves at once, later ones at most once per interval, the end at once', async () => {
  const { source, push, end } = manualSource();
  const deltas = coalesce(source, 300)[Symbol.asyncIterator]();
  push('a');
  assert.deepEqual((await deltas.next()).value, { text: 'a', tokenCount: 1 });
  const firstAt = performance.now();
  push('b', 'c');
  // Held for the interval, then both together.
  assert.deepEqual((await deltas.next()).value, { text: 'bc', tokenCount: 2 });
  assert.ok(performance.now() - firstAt >= 299, `${performance.now() - firstAt} ms`);
  // The end does not wait out the interval (60 s would fail the test by its timeout).
  const long = coalesce(manualSourceWith(['x', 'y', 'z']), 60_000);
  const seen: TextDelta[] = [];
  for await (const d of long) seen.push(d);
  assert.equal(seen.map((d) => d.text).join(''), 'xyz');
  assert.equal(
    seen.reduce((n, d) => n + d.tokenCount, 0),
    3,
  );
  end();
  assert.equal((await deltas.next()).done, true);
});

function manualSourceWith(texts: string[]): AsyncGenerator<TextDelta> {
  const m = manualSource();
  m.push(...texts);
  m.end();
  return m.source;
}
