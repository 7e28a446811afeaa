import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { KubeApiError } from './api-error.ts';
import { FakeClock } from './clock.ts';
import { type CoreEvent, EventAggregator, EventRecorder } from './events.ts';
import type { KubeObject } from './resources.ts';

const cluster: KubeObject = {
  apiVersion: 'rayline.dev/v1',
  kind: 'RayCluster',
  metadata: { name: 'demo', namespace: 'ns1', uid: 'uid-1', resourceVersion: '7' },
};

interface Call {
  verb: 'create' | 'patch';
  namespace?: string;
  name?: string;
  body: unknown;
}

/** Records writes; `fail` makes the next calls throw. */
function fakeClient() {
  const calls: Call[] = [];
  const state = { fail: undefined as unknown };
  const client = {
    async create<T extends KubeObject>(_r: unknown, obj: T): Promise<T> {
      if (state.fail) throw state.fail;
      calls.push({ verb: 'create', namespace: obj.metadata?.namespace, name: obj.metadata?.name, body: obj });
      return obj;
    },
    async patch<T extends KubeObject>(
      _r: unknown,
      namespace: string,
      name: string,
      _t: string,
      body: object,
    ) {
      if (state.fail) throw state.fail;
      calls.push({ verb: 'patch', namespace, name, body });
      return body as T;
    },
  };
  return { client, calls, state };
}

function silentLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(s) });
  return { logger, lines };
}

test('aggregator: the same event within the window repeats; after it, or changed, it is new', () => {
  const clock = new FakeClock();
  const agg = new EventAggregator({ clock, windowMs: 600_000 });
  const k = EventAggregator.keyOf({ uid: 'u' }, 'Normal', 'Created', 'pod a');
  assert.equal(agg.repeats(k), undefined);
  agg.recorded(k, 'ev1', 'ns', 1);
  clock.advance(599_999);
  assert.equal(agg.repeats(k)?.name, 'ev1');
  assert.equal(agg.repeats(EventAggregator.keyOf({ uid: 'u' }, 'Normal', 'Created', 'pod b')), undefined);
  assert.equal(agg.repeats(EventAggregator.keyOf({ uid: 'u' }, 'Warning', 'Created', 'pod a')), undefined);
  assert.equal(agg.repeats(EventAggregator.keyOf({ uid: 'v' }, 'Normal', 'Created', 'pod a')), undefined);
  agg.recorded(k, 'ev1', 'ns', 2);
  clock.advance(599_999);
  assert.equal(agg.repeats(k)?.count, 2, 'each repeat extends the window');
  clock.advance(1);
  assert.equal(agg.repeats(k), undefined);
});

test('aggregator: bounded, evicting the least recently seen', () => {
  const agg = new EventAggregator({ clock: new FakeClock(), maxEntries: 2 });
  agg.recorded('a', 'a', 'ns', 1);
  agg.recorded('b', 'b', 'ns', 1);
  agg.recorded('a', 'a', 'ns', 2);
  agg.recorded('c', 'c', 'ns', 1);
  assert.equal(agg.size(), 2);
  assert.equal(agg.repeats('b'), undefined);
  assert.equal(agg.repeats('a')?.count, 2);
});

test('recorder: creates a full core/v1 Event, then counts repeats with a patch', async () => {
  const { client, calls } = fakeClient();
  const clock = new FakeClock();
  const recorder = new EventRecorder({ client, clock, instance: 'op-1', wallClock: () => new Date(0) });
  recorder.event(cluster, 'Normal', 'CreatedHeadPod', 'created pod demo-head-x');
  recorder.event(cluster, 'Normal', 'CreatedHeadPod', 'created pod demo-head-x');
  recorder.event(cluster, 'Normal', 'CreatedHeadPod', 'created pod demo-head-x');
  await recorder.flush();
  assert.deepEqual(
    calls.map((c) => c.verb),
    ['create', 'patch', 'patch'],
  );
  const ev = calls[0]!.body as CoreEvent;
  assert.equal(ev.metadata?.namespace, 'ns1');
  assert.match(ev.metadata?.name ?? '', /^demo\.[0-9a-f]+$/);
  assert.deepEqual(ev.involvedObject, {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    name: 'demo',
    namespace: 'ns1',
    uid: 'uid-1',
    resourceVersion: '7',
  });
  assert.equal(ev.type, 'Normal');
  assert.equal(ev.reason, 'CreatedHeadPod');
  assert.deepEqual(ev.source, { component: 'rayline-operator' });
  assert.equal(ev.reportingInstance, 'op-1');
  assert.equal(ev.count, 1);
  assert.equal(ev.firstTimestamp, '1970-01-01T00:00:00.000Z');
  assert.equal(calls[1]!.name, ev.metadata?.name);
  assert.deepEqual(calls[1]!.body, { count: 2, lastTimestamp: '1970-01-01T00:00:00.000Z' });
  assert.deepEqual(calls[2]!.body, { count: 3, lastTimestamp: '1970-01-01T00:00:00.000Z' });

  clock.advance(10 * 60_000);
  recorder.event(cluster, 'Normal', 'CreatedHeadPod', 'created pod demo-head-x');
  recorder.event(cluster, 'Warning', 'CreatedHeadPod', 'created pod demo-head-x');
  await recorder.flush();
  assert.deepEqual(
    calls.slice(3).map((c) => c.verb),
    ['create', 'create'],
    'after 10 minutes, and for another type, a new event',
  );
});

test('recorder: a repeat whose event expired on the server is created anew', async () => {
  const { client, calls, state } = fakeClient();
  const recorder = new EventRecorder({ client, clock: new FakeClock() });
  recorder.event(cluster, 'Warning', 'PodFailed', 'x');
  await recorder.flush();
  const realPatch = client.patch;
  client.patch = async () => {
    throw new KubeApiError('PATCH', '/api/v1/namespaces/ns1/events/e', 404, 'NotFound', 'gone');
  };
  recorder.event(cluster, 'Warning', 'PodFailed', 'x');
  await recorder.flush();
  client.patch = realPatch;
  recorder.event(cluster, 'Warning', 'PodFailed', 'x');
  await recorder.flush();
  assert.deepEqual(
    calls.map((c) => c.verb),
    ['create', 'create', 'patch'],
  );
  assert.equal(calls[2]!.name, calls[1]!.name, 'later repeats count on the new event');
  assert.equal(state.fail, undefined);
});

test('recorder: failures are logged, never thrown, and later events still go out', async () => {
  const { client, calls, state } = fakeClient();
  const { logger, lines } = silentLogger();
  const recorder = new EventRecorder({ client, logger, clock: new FakeClock() });
  state.fail = new KubeApiError('POST', '/api/v1/namespaces/ns1/events', 403, 'Forbidden', 'no');
  recorder.event(cluster, 'Normal', 'A', 'a');
  await recorder.flush();
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /could not record event/);
  state.fail = undefined;
  recorder.event(cluster, 'Normal', 'A', 'a');
  await recorder.flush();
  assert.deepEqual(
    calls.map((c) => c.verb),
    ['create'],
    'the failed event was not remembered as written',
  );
});

test('recorder: drops events beyond maxPending instead of queueing without bound', async () => {
  const { client, calls } = fakeClient();
  const { logger, lines } = silentLogger();
  const recorder = new EventRecorder({ client, logger, clock: new FakeClock(), maxPending: 2 });
  for (let i = 0; i < 5; i++) recorder.event(cluster, 'Normal', 'R', `m${i}`);
  await recorder.flush();
  assert.equal(calls.length, 2);
  assert.equal(lines.filter((l) => l.includes('event dropped')).length, 3);
});
