/**
 * Leader election against an in-memory lease store with the API server's optimistic concurrency.
 * The same scenarios against a real API server are in test/kube-leader-election.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { KubeApiError } from './api-error.ts';
import { LeaderElector, type LeaderElectorOptions, type Lease } from './leader-election.ts';
import type { KubeObject } from './resources.ts';

class FakeLeases {
  lease: Lease | undefined;
  rv = 1;
  /** Every call throws, as when the API server is down. */
  down = false;
  /** Every call waits until aborted, as on a half-open connection. */
  hang = false;

  async #gate(signal?: AbortSignal): Promise<void> {
    if (this.down) throw new KubeApiError('GET', '/leases', 0, 'ConnectionFailed', 'refused');
    if (this.hang) {
      await new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    }
  }

  client = {
    get: async <T extends KubeObject>(
      _r: unknown,
      _ns: unknown,
      _n: unknown,
      o?: { signal?: AbortSignal },
    ) => {
      await this.#gate(o?.signal);
      return (this.lease ? structuredClone(this.lease) : null) as T | null;
    },
    create: async <T extends KubeObject>(_r: unknown, obj: T, o?: { signal?: AbortSignal }) => {
      await this.#gate(o?.signal);
      if (this.lease) throw new KubeApiError('POST', '/leases', 409, 'AlreadyExists', 'exists');
      this.lease = {
        ...structuredClone(obj),
        metadata: { ...obj.metadata, resourceVersion: String(++this.rv) },
      };
      return structuredClone(this.lease) as T;
    },
    replace: async <T extends KubeObject>(_r: unknown, obj: T, o?: { signal?: AbortSignal }) => {
      await this.#gate(o?.signal);
      if (obj.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) {
        throw new KubeApiError('PUT', '/leases/x', 409, 'Conflict', 'modified');
      }
      this.lease = {
        ...structuredClone(obj),
        metadata: { ...obj.metadata, resourceVersion: String(++this.rv) },
      };
      return structuredClone(this.lease) as T;
    },
  };

  holder(): string {
    return this.lease?.spec?.holderIdentity ?? '';
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - start;
}

// Candidates a failed test left running would keep the test process alive.
const running: AbortController[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.abort();
});

const timing = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

function candidate(store: FakeLeases, identity: string, extra: Partial<LeaderElectorOptions> = {}) {
  const state = { leading: false, starts: 0, stops: 0, signal: undefined as AbortSignal | undefined };
  const elector = new LeaderElector({
    client: store.client,
    namespace: 'ns',
    name: 'rayline-operator',
    identity,
    ...timing,
    onStartedLeading: (signal) => {
      state.leading = true;
      state.starts++;
      state.signal = signal;
    },
    onStoppedLeading: () => {
      state.leading = false;
      state.stops++;
    },
    ...extra,
  });
  const stop = new AbortController();
  running.push(stop);
  const done = elector.run(stop.signal);
  return { elector, state, stop, done };
}

test('of two candidates exactly one leads, and keeps leading while it renews', async () => {
  const store = new FakeLeases();
  const a = candidate(store, 'a');
  const b = candidate(store, 'b');
  await waitFor('a leader', () => a.state.leading || b.state.leading);
  const [leader, follower] = a.state.leading ? [a, b] : [b, a];
  const renewTime = store.lease?.spec?.renewTime;
  for (let i = 0; i < 30; i++) {
    assert.equal(leader.elector.isLeader(), true);
    assert.equal(follower.elector.isLeader(), false);
    assert.equal(follower.state.starts, 0);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.notEqual(store.lease?.spec?.renewTime, renewTime, 'the leader renewed');
  assert.equal(store.holder(), leader.elector.identity);
  assert.equal(follower.elector.observedLeader(), leader.elector.identity);
  assert.match(store.lease?.spec?.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  leader.stop.abort();
  follower.stop.abort();
  await Promise.all([a.done, b.done]);
});

test('a leader stopping gracefully releases the lease and the other takes over at once', async () => {
  const store = new FakeLeases();
  const a = candidate(store, 'a');
  await waitFor('a leads', () => a.state.leading);
  const b = candidate(store, 'b');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(b.state.leading, false);
  a.stop.abort();
  await a.done;
  assert.equal(a.state.stops, 1);
  assert.equal(a.state.signal?.aborted, true);
  const took = await waitFor('b leads', () => b.state.leading);
  assert.ok(took < timing.leaseDurationMs, `takeover took ${took} ms; a released lease needs no expiry`);
  assert.equal(store.lease?.spec?.leaseTransitions, 1, 'created by a (0), then taken by b');
  b.stop.abort();
  await b.done;
  assert.equal(store.holder(), '');
});

test('a leader that vanishes without releasing is replaced once its lease expires', async () => {
  const store = new FakeLeases();
  const a = candidate(store, 'a', { releaseOnStop: false });
  await waitFor('a leads', () => a.state.leading);
  const b = candidate(store, 'b');
  a.stop.abort();
  await a.done;
  const gone = performance.now();
  assert.equal(store.holder(), 'a', 'not released');
  await waitFor('b leads', () => b.state.leading);
  const took = performance.now() - gone;
  assert.ok(took >= timing.leaseDurationMs - timing.retryPeriodMs - 50, `took over too early: ${took} ms`);
  assert.ok(took < timing.leaseDurationMs + 1000, `took over too late: ${took} ms`);
  b.stop.abort();
  await b.done;
});

for (const failure of ['down', 'hang'] as const) {
  test(`a leader whose renewals fail (${failure}) stops leading within the renew deadline`, async () => {
    const store = new FakeLeases();
    const a = candidate(store, 'a');
    await waitFor('a leads', () => a.state.leading);
    store[failure] = true;
    const broke = performance.now();
    await waitFor('a stops', () => !a.state.leading, 5000);
    const took = performance.now() - broke;
    assert.ok(took <= timing.renewDeadlineMs + 250, `stopped after ${took} ms`);
    assert.equal(a.state.signal?.aborted, true);
    assert.equal(a.state.stops, 1);
    assert.equal(a.elector.isLeader(), false);
    await a.done; // run() returns after losing
    store[failure] = false;
  });
}

test('a leader that finds someone else on the lease stops at its next renewal', async () => {
  const store = new FakeLeases();
  const a = candidate(store, 'a');
  await waitFor('a leads', () => a.state.leading);
  store.lease = { ...store.lease!, spec: { ...store.lease!.spec, holderIdentity: 'intruder' } };
  const took = await waitFor('a stops', () => !a.state.leading);
  assert.ok(took < timing.retryPeriodMs * 3, `took ${took} ms`);
  assert.equal(store.holder(), 'intruder', 'a does not take it back');
  await a.done;
});

test('an expired lease left by another holder is taken; transitions count up', async () => {
  const store = new FakeLeases();
  store.lease = {
    metadata: { name: 'rayline-operator', namespace: 'ns', resourceVersion: '1' },
    spec: {
      holderIdentity: 'old',
      leaseDurationSeconds: 15,
      renewTime: '2020-01-01T00:00:00.000000Z',
      leaseTransitions: 4,
    },
  };
  const a = candidate(store, 'a');
  await waitFor('a leads', () => a.state.leading);
  assert.equal(store.lease?.spec?.leaseTransitions, 5);
  assert.equal(store.lease?.spec?.leaseDurationSeconds, 1);
  a.stop.abort();
  await a.done;
});

test('timings must satisfy leaseDuration > renewDeadline > retryPeriod', () => {
  const base = { client: new FakeLeases().client, namespace: 'n', name: 'l', onStartedLeading: () => {} };
  assert.throws(
    () => new LeaderElector({ ...base, leaseDurationMs: 1000, renewDeadlineMs: 1000 }),
    /leaseDuration/,
  );
  assert.match(new LeaderElector(base).identity, /_[0-9a-f]{8}$/);
});
