/** Session affinity: where a session's key comes from, and a consistent choice that yields to load. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseBySession, sessionOfArgs, sessionOfHttp } from './session-affinity.ts';

const http = (headers: Record<string, string>, body: unknown = {}) =>
  [{ m: '__call__', h: { method: 'POST', url: '/', headers } }, Buffer.from(JSON.stringify(body))] as const;

test('the session: x-session-id, else the body user, else prompt_cache_key; a handle call: its session argument', () => {
  assert.equal(sessionOfHttp(...http({ 'x-session-id': 's1' }, { user: 'u' })), 's1');
  assert.equal(sessionOfHttp(...http({}, { user: 'u', prompt_cache_key: 'k' })), 'u');
  assert.equal(sessionOfHttp(...http({}, { prompt_cache_key: 'k' })), 'k');
  // A chat message's role is no session.
  assert.equal(sessionOfHttp(...http({}, { messages: [{ role: 'user', content: '"user": x' }] })), undefined);
  assert.equal(sessionOfHttp({ m: 'generate' }, Buffer.from('{"user":"u"}')), undefined);
  // A LoRA adapter's model id comes first.
  assert.equal(
    sessionOfHttp(...http({ 'x-session-id': 's1' }, { model: 'base:ad-1', user: 'u' })),
    'base:ad-1',
  );
  assert.equal(sessionOfHttp(...http({}, { model: 'base', user: 'u' })), 'u');
  assert.equal(sessionOfArgs([{ prompt: 'p', session: 'abc' }]), 'abc');
  assert.equal(sessionOfArgs([{ prompt: 'p' }]), undefined);
});

test('one replica per session, stable while it has room; only the sessions of a removed replica move', () => {
  const replicas = ['r1', 'r2', 'r3', 'r4'].map((replicaId) => ({ replicaId, queueLength: 0 }));
  const sessions = Array.from({ length: 200 }, (_, i) => `session-${i}`);
  const placed = new Map(sessions.map((s) => [s, chooseBySession(s, replicas, 5, 10)!.replicaId]));
  // Spread over all replicas, and the same answer again.
  assert.equal(new Set(placed.values()).size, 4);
  for (const s of sessions) assert.equal(chooseBySession(s, replicas, 5, 10)?.replicaId, placed.get(s));
  const fewer = replicas.filter((r) => r.replicaId !== 'r2');
  for (const s of sessions) {
    const now = chooseBySession(s, fewer, 5, 10)!.replicaId;
    if (placed.get(s) !== 'r2') assert.equal(now, placed.get(s), s);
  }
  // A full replica, or one far busier than the others, gives its sessions up for now.
  const session = sessions[0];
  const home = placed.get(session)!;
  const full = replicas.map((r) => ({ ...r, queueLength: r.replicaId === home ? 5 : 0 }));
  assert.notEqual(chooseBySession(session, full, 5, 10)?.replicaId, home);
  const busy = replicas.map((r) => ({ ...r, queueLength: r.replicaId === home ? 4 : 0 }));
  assert.notEqual(chooseBySession(session, busy, 100, 3)?.replicaId, home);
  assert.equal(chooseBySession(session, busy, 100, 4)?.replicaId, home);
  assert.equal(chooseBySession(session, [{ replicaId: 'r', queueLength: 5 }], 5, 10), undefined);
});
