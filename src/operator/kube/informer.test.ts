/**
 * Informer logic against a scripted list/watch fake: relist diffs, 410, watchdog, backoff, resync,
 * namespaces. The same behaviours against a real API server are in test/kube-informer.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeApiError } from './api-error.ts';
import type { ListOptions, ListResult, WatchOptions } from './client.ts';
import { Informer, type InformerOptions } from './informer.ts';
import { ConfigMaps, type KubeObject, objectKey } from './resources.ts';
import type { WatchEvent } from './watch-stream.ts';

interface CM extends KubeObject {
  data?: Record<string, string>;
}

interface Watcher {
  namespace: string | undefined;
  onEvent: (e: WatchEvent<CM>) => void;
  end: () => void;
}

/** An in-memory API server for one resource: objects, an event history that can be compacted, watches. */
class FakeApi {
  objects = new Map<string, CM>();
  history: { rv: number; event: WatchEvent<CM> }[] = [];
  rv = 100;
  compactedTo = 0;
  watchers = new Set<Watcher>();
  listCalls: (string | undefined)[] = [];
  watchCalls: (string | undefined)[] = [];
  /** Errors to throw from the next watch calls, in order. */
  watchFailures: Error[] = [];
  /** Accept watches but never send or end them. */
  silent = false;

  put(namespace: string, name: string, data: Record<string, string> = {}): void {
    const key = `${namespace}/${name}`;
    const type = this.objects.has(key) ? 'MODIFIED' : 'ADDED';
    const obj: CM = { metadata: { namespace, name, resourceVersion: String(++this.rv) }, data };
    this.objects.set(key, obj);
    this.#publish({ type, object: obj });
  }

  remove(namespace: string, name: string): void {
    const obj = this.objects.get(`${namespace}/${name}`)!;
    this.objects.delete(`${namespace}/${name}`);
    const gone = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    this.#publish({ type: 'DELETED', object: gone });
  }

  /** Drops every watch, as a restarting API server would. */
  disconnect(): void {
    for (const w of this.watchers) w.end();
  }

  compact(): void {
    this.compactedTo = this.rv;
  }

  #publish(event: WatchEvent<CM>): void {
    this.history.push({ rv: this.rv, event });
    const ns = (event.object as CM).metadata?.namespace;
    for (const w of this.watchers) if (w.namespace === undefined || w.namespace === ns) w.onEvent(event);
  }

  client = {
    list: async <T extends KubeObject>(_r: unknown, opts: ListOptions = {}): Promise<ListResult<T>> => {
      this.listCalls.push(opts.namespace);
      const items = [...this.objects.values()].filter(
        (o) => opts.namespace === undefined || o.metadata?.namespace === opts.namespace,
      );
      return { items: structuredClone(items) as T[], resourceVersion: String(this.rv) };
    },
    watch: async <T extends KubeObject>(
      _r: unknown,
      opts: WatchOptions,
      onEvent: (e: WatchEvent<T>) => void,
      signal: AbortSignal,
    ): Promise<void> => {
      this.watchCalls.push(opts.namespace);
      const failure = this.watchFailures.shift();
      if (failure) throw failure;
      const from = Number(opts.resourceVersion);
      const emit = onEvent as (e: WatchEvent<CM>) => void;
      if (from < this.compactedTo) {
        emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } });
        return;
      }
      await new Promise<void>((resolve) => {
        const w: Watcher = { namespace: opts.namespace, onEvent: emit, end: () => finish() };
        const finish = () => {
          this.watchers.delete(w);
          resolve();
        };
        if (signal.aborted) return resolve();
        signal.addEventListener('abort', finish, { once: true });
        if (this.silent) return;
        for (const h of this.history) {
          const ns = (h.event.object as CM).metadata?.namespace;
          if (h.rv > from && (opts.namespace === undefined || opts.namespace === ns)) emit(h.event);
        }
        this.watchers.add(w);
      });
    },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function recorder(informer: Informer<CM>) {
  const log: string[] = [];
  informer.addHandlers({
    onAdd: (o) => log.push(`add ${objectKey(o)}`),
    onUpdate: (a, b) => log.push(`${a === b ? 'resync' : 'update'} ${objectKey(b)}`),
    onDelete: (o) => log.push(`delete ${objectKey(o)}`),
  });
  return log;
}

function informerOf(api: FakeApi, opts: Partial<InformerOptions> = {}): Informer<CM> {
  return new Informer<CM>(api.client, { resource: ConfigMaps, backoffBaseMs: 2, backoffMaxMs: 20, ...opts });
}

const cached = (inf: Informer<CM>) =>
  inf
    .list()
    .map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`)
    .sort();
const onServer = (api: FakeApi) =>
  [...api.objects.values()].map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`).sort();

test('lists, then follows adds, updates and deletes', async () => {
  const api = new FakeApi();
  api.put('a', 'one');
  const inf = informerOf(api);
  const log = recorder(inf);
  inf.start();
  await inf.waitForSync();
  assert.deepEqual(log, ['add a/one']);
  await waitFor('watch', () => api.watchers.size === 1);
  api.put('a', 'two');
  api.put('a', 'one', { v: '2' });
  api.remove('a', 'two');
  assert.deepEqual(log, ['add a/one', 'add a/two', 'update a/one', 'delete a/two']);
  assert.deepEqual(inf.get('a/one')?.data, { v: '2' });
  assert.equal(inf.get('a/two'), undefined);
  await inf.stop();
  assert.equal(api.watchers.size, 0, 'stop ends the watch');
});

test('a watch that ends resumes from the last resourceVersion, without a relist or duplicates', async () => {
  const api = new FakeApi();
  const inf = informerOf(api);
  const log = recorder(inf);
  inf.start();
  await waitFor('watch', () => api.watchers.size === 1);
  api.disconnect();
  api.put('a', 'while-away');
  await waitFor('event', () => inf.get('a/while-away') !== undefined);
  assert.deepEqual(log, ['add a/while-away']);
  assert.equal(api.listCalls.length, 1);
  await inf.stop();
});

test('410 Gone relists and turns what changed while away into adds, updates and deletes', async () => {
  const api = new FakeApi();
  api.put('a', 'stays');
  api.put('a', 'changes');
  api.put('a', 'goes');
  const inf = informerOf(api);
  const log = recorder(inf);
  const seenInHandler: (CM | undefined)[] = [];
  inf.addHandlers({ onDelete: () => seenInHandler.push(inf.get('a/new'), inf.get('a/goes')) });
  inf.start();
  await waitFor('watch', () => api.watchers.size === 1);
  log.length = 0;
  // Changes the informer does not see, then history compacted past its resourceVersion.
  api.silent = true;
  api.disconnect();
  api.put('a', 'new');
  api.put('a', 'changes', { v: '2' });
  api.remove('a', 'goes');
  api.compact();
  api.silent = false;
  await waitFor('relist', () => api.listCalls.length === 2, 10_000);
  await waitFor('cache', () => cached(inf).join() === onServer(api).join());
  assert.deepEqual(log.sort(), ['add a/new', 'delete a/goes', 'update a/changes']);
  assert.equal(seenInHandler[0]?.metadata?.name, 'new', 'handlers see the replaced cache');
  assert.equal(seenInHandler[1], undefined);
  await inf.stop();
});

test('a watch answered with HTTP 410 relists too', async () => {
  const api = new FakeApi();
  const inf = informerOf(api);
  inf.start();
  await inf.waitForSync();
  api.watchFailures.push(new KubeApiError('GET', '/api/v1/configmaps', 410, 'Gone', 'too old'));
  api.disconnect();
  await waitFor('relist', () => api.listCalls.length === 2);
  await inf.stop();
});

test('errors restart the watch with growing backoff, then it recovers', async () => {
  const api = new FakeApi();
  const inf = informerOf(api, { backoffBaseMs: 20, backoffMaxMs: 80 });
  inf.start();
  await inf.waitForSync();
  const boom = () => new KubeApiError('GET', '/api/v1/configmaps', 0, 'ConnectionFailed', 'refused');
  api.watchFailures.push(boom(), boom(), boom(), boom());
  const started = Date.now();
  api.disconnect();
  await waitFor('recovered watch', () => api.watchers.size === 1);
  // Equal jitter: waits of at least 10 + 20 + 40 + 40 ms.
  assert.ok(Date.now() - started >= 110, `backoff too short: ${Date.now() - started} ms`);
  api.put('a', 'after');
  await waitFor('event', () => inf.get('a/after') !== undefined);
  assert.equal(api.listCalls.length, 1, 'plain errors resume the watch without relisting');
  await inf.stop();
});

test('the watchdog restarts a watch that went silent', async () => {
  const api = new FakeApi();
  const inf = informerOf(api, { watchdogMs: 50 });
  inf.start();
  await inf.waitForSync();
  api.silent = true;
  api.disconnect();
  const calls = api.watchCalls.length;
  await waitFor('watchdog restarts', () => api.watchCalls.length >= calls + 2);
  api.silent = false;
  api.put('a', 'x');
  await waitFor('event after restart', () => inf.get('a/x') !== undefined);
  await inf.stop();
});

test('resync re-delivers every cached object to onUpdate', async () => {
  const api = new FakeApi();
  api.put('a', 'one');
  api.put('b', 'two');
  const inf = informerOf(api, { resyncPeriodMs: 30 });
  const log = recorder(inf);
  inf.start();
  await waitFor('resync', () => log.filter((l) => l.startsWith('resync')).length >= 4);
  assert.ok(log.includes('resync a/one') && log.includes('resync b/two'));
  await inf.stop();
});

test('a namespace list watches only those namespaces, one list and watch each', async () => {
  const api = new FakeApi();
  api.put('a', 'x');
  api.put('b', 'y');
  api.put('c', 'z');
  const inf = informerOf(api, { namespaces: ['a', 'b', 'a'] });
  inf.start();
  await inf.waitForSync();
  assert.deepEqual(api.listCalls.sort(), ['a', 'b']);
  await waitFor('watches', () => api.watchers.size === 2);
  api.put('c', 'later');
  api.put('b', 'later');
  await waitFor('event', () => inf.get('b/later') !== undefined);
  assert.deepEqual(
    cached(inf).map((s) => s.split('@')[0]),
    ['a/x', 'b/later', 'b/y'],
  );
  assert.equal(inf.get('c/z'), undefined);
  assert.deepEqual(inf.list('a').map(objectKey), ['a/x']);
  await inf.stop();
});

test('waitForSync rejects on abort and on stop; late handlers get the cache as adds', async () => {
  const api = new FakeApi();
  api.put('a', 'one');
  const never = informerOf(api);
  const ac = new AbortController();
  const waiting = never.waitForSync(ac.signal);
  ac.abort(new Error('gave up'));
  await assert.rejects(waiting, /gave up/);
  const stopped = never.waitForSync();
  never.start();
  api.watchFailures.push(new Error('x'));
  await never.stop();
  await stopped.catch(() => {}); // synced or stopped: either way it settles

  const inf = informerOf(api);
  inf.start();
  await inf.waitForSync();
  assert.equal(inf.hasSynced(), true);
  const log = recorder(inf);
  assert.deepEqual(log, ['add a/one']);
  await inf.stop();
});

test('a throwing handler does not stop the others or the informer', async () => {
  const api = new FakeApi();
  const inf = informerOf(api);
  inf.addHandlers({
    onAdd: () => {
      throw new Error('handler bug');
    },
  });
  const log = recorder(inf);
  inf.start();
  await waitFor('watch', () => api.watchers.size === 1);
  api.put('a', 'one');
  api.put('a', 'two');
  assert.deepEqual(log, ['add a/one', 'add a/two']);
  await inf.stop();
});
