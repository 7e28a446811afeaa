/** Stop strings split across pieces and multi-byte characters split across tokens. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IncrementalDetokenizer, StopMatcher } from './stop.ts';

test('a stop string split across pieces is cut and never emitted', () => {
  const m = new StopMatcher(['END']);
  assert.deepEqual(m.push('abcE'), { emit: 'abc', stopped: false });
  assert.deepEqual(m.push('N'), { emit: '', stopped: false });
  assert.deepEqual(m.push('Dxyz'), { emit: '', stopped: true });
});

test('held text that turns out not to be a stop string is released', () => {
  const m = new StopMatcher(['END', '\n\n']);
  assert.deepEqual(m.push('aE'), { emit: 'a', stopped: false });
  assert.deepEqual(m.push('x'), { emit: 'Ex', stopped: false });
  assert.deepEqual(m.push('b\n'), { emit: 'b', stopped: false });
  assert.equal(m.flush(), '\n');
});

test('the earliest of several stop strings wins', () => {
  const m = new StopMatcher(['zz', 'b']);
  assert.deepEqual(m.push('abzz'), { emit: 'a', stopped: true });
});

test('multi-byte characters wait for all their bytes', () => {
  const d = new IncrementalDetokenizer((t) => Buffer.from(t).toString('utf8'));
  const bytes = [...Buffer.from('é✓')];
  const out = bytes.map((b) => d.push(b));
  assert.deepEqual(
    out.map((o) => o.text),
    ['', 'é', '', '', '✓'],
  );
  assert.equal(
    out.reduce((n, o) => n + o.tokenCount, 0),
    bytes.length,
  );
  assert.deepEqual(d.flush(), { text: '', tokenCount: 0 });
});
