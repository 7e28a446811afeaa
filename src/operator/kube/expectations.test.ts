import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from './clock.ts';
import { Expectations } from './expectations.ts';

test('unknown keys are satisfied', () => {
  assert.equal(new Expectations().satisfied('ns/c'), true);
});

test('creations are satisfied only once each expected name is observed', () => {
  const e = new Expectations({ clock: new FakeClock() });
  e.expectCreations('ns/c', ['p1', 'p2']);
  assert.equal(e.satisfied('ns/c'), false);
  e.creationObserved('ns/c', 'p1');
  e.creationObserved('ns/c', 'unrelated');
  assert.equal(e.satisfied('ns/c'), false, 'an unrelated pod must not count');
  assert.deepEqual(e.pending('ns/c'), { creations: ['p2'], deletions: [] });
  e.creationObserved('ns/c', 'p2');
  assert.equal(e.satisfied('ns/c'), true);
  assert.equal(e.satisfied('ns/other'), true, 'keys are independent');
});

test('a creation observed before it was expected (generateName race) counts', () => {
  const e = new Expectations({ clock: new FakeClock() });
  e.creationObserved('ns/c', 'c-worker-abcde');
  e.expectCreations('ns/c', ['c-worker-abcde', 'c-worker-fghij']);
  assert.deepEqual(e.pending('ns/c').creations, ['c-worker-fghij']);
});

test('early sightings expire after the TTL, and a deletion voids them', () => {
  const clock = new FakeClock();
  const e = new Expectations({ clock, ttlMs: 1000 });
  e.creationObserved('ns/c', 'old');
  clock.advance(1000);
  e.expectCreations('ns/c', ['old']);
  assert.equal(e.satisfied('ns/c'), false, 'a sighting older than the TTL must not satisfy');
  e.creationObserved('ns/c', 'old');
  e.creationObserved('ns/c', 'head');
  e.deletionObserved('ns/c', 'head');
  e.expectCreations('ns/c', ['head']);
  assert.equal(e.satisfied('ns/c'), false, 'the deleted head was a different object');
});

test('deletions match by name and uid', () => {
  const e = new Expectations({ clock: new FakeClock() });
  e.expectDeletions('ns/c', [{ name: 'p1', uid: 'u1' }, { name: 'p2' }]);
  e.deletionObserved('ns/c', 'p1', 'other-uid');
  assert.deepEqual(e.pending('ns/c').deletions, ['p1', 'p2'], 'another object with that name');
  e.deletionObserved('ns/c', 'p1', 'u1');
  e.deletionObserved('ns/c', 'p2', 'anything');
  assert.equal(e.satisfied('ns/c'), true);
});

test('failed requests lower the expectations', () => {
  const e = new Expectations({ clock: new FakeClock() });
  e.expectCreations('ns/c', ['a']);
  e.expectDeletions('ns/c', [{ name: 'b' }]);
  e.creationFailed('ns/c', 'a');
  assert.equal(e.satisfied('ns/c'), false);
  e.deletionFailed('ns/c', 'b');
  assert.equal(e.satisfied('ns/c'), true);
});

test('unmet expectations expire after the TTL, counted from the last one recorded', () => {
  const clock = new FakeClock();
  const e = new Expectations({ clock, ttlMs: 300_000 });
  e.expectCreations('ns/c', ['a']);
  clock.advance(200_000);
  e.expectDeletions('ns/c', [{ name: 'b' }]);
  clock.advance(299_999);
  assert.equal(e.satisfied('ns/c'), false);
  clock.advance(1);
  assert.equal(e.satisfied('ns/c'), true);
  assert.deepEqual(e.pending('ns/c'), { creations: [], deletions: [] }, 'expired expectations are dropped');
  e.expectCreations('ns/c', ['c']);
  assert.equal(e.satisfied('ns/c'), false, 'new expectations start a new TTL');
});

test('default TTL is five minutes', () => {
  const clock = new FakeClock();
  const e = new Expectations({ clock });
  e.expectCreations('k', ['a']);
  clock.advance(5 * 60_000 - 1);
  assert.equal(e.satisfied('k'), false);
  clock.advance(1);
  assert.equal(e.satisfied('k'), true);
});

test('delete(key) forgets everything about the key', () => {
  const e = new Expectations({ clock: new FakeClock() });
  e.expectCreations('k', ['a']);
  e.delete('k');
  assert.equal(e.satisfied('k'), true);
});
