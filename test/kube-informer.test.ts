/**
 * The informer against a real kube-apiserver and etcd: events, API server restarts and outages, a
 * network partition (through a TCP proxy), 410 after etcd compaction, and a silently stalled watch.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeClient } from '../src/operator/kube/client.ts';
import { Informer, type InformerOptions, type ListWatchClient } from '../src/operator/kube/informer.ts';
import { ConfigMaps, type KubeObject, Namespaces, objectKey } from '../src/operator/kube/resources.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { compactEtcd, kubeConfigVia, TcpProxy, waitFor } from './kube/support.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let env: KubeTestEnv;
let client: KubeClient;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  env = await startKubeTestEnv({ installCrds: false });
  client = new KubeClient(env.kubeConfig);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await client?.close();
  await env?.stop();
});

let nsCount = 0;
async function namespace(): Promise<string> {
  const name = `inf-${++nsCount}`;
  await client.create(Namespaces, { metadata: { name } });
  return name;
}

/** An informer on one namespace with a log of handler calls and counters of list and watch calls. */
async function watched(ns: string, via: KubeClient = client, opts: Partial<InformerOptions> = {}) {
  const counts = { lists: 0, watches: 0 };
  const lw: ListWatchClient = {
    list: (r, o) => {
      counts.lists++;
      return via.list(r, o);
    },
    watch: (r, o, onEvent, signal) => {
      counts.watches++;
      return via.watch(r, o, onEvent, signal);
    },
    resetConnections: () => via.resetConnections(),
  };
  const informer = new Informer<ConfigMap>(lw, {
    resource: ConfigMaps,
    namespaces: [ns],
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    ...opts,
  });
  const log: string[] = [];
  informer.addHandlers({
    onAdd: (o) => log.push(`add ${o.metadata?.name}`),
    onUpdate: (a, b) => {
      if (a !== b) log.push(`update ${b.metadata?.name}`);
    },
    onDelete: (o) => log.push(`delete ${o.metadata?.name}`),
  });
  informer.start();
  cleanups.push(() => informer.stop());
  await informer.waitForSync(AbortSignal.timeout(30_000));
  return { informer, log, counts };
}

async function put(ns: string, name: string, data: Record<string, string> = {}): Promise<void> {
  const existing = await client.get<ConfigMap>(ConfigMaps, ns, name);
  if (existing) await client.replace(ConfigMaps, { ...existing, data });
  else await client.create<ConfigMap>(ConfigMaps, { metadata: { name, namespace: ns }, data });
}

/** The cache holds exactly the server's objects at the server's versions. */
async function converged(informer: Informer<ConfigMap>, ns: string): Promise<boolean> {
  const server = (await client.list<ConfigMap>(ConfigMaps, { namespace: ns })).items;
  const a = server.map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`).sort();
  const b = informer
    .list(ns)
    .map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`)
    .sort();
  return a.join() === b.join();
}

const count = (log: string[], entry: string) => log.filter((l) => l === entry).length;

test('sees adds, updates and deletes, and only in its namespaces', async () => {
  const ns = await namespace();
  const other = await namespace();
  await put(ns, 'before');
  const { informer, log } = await watched(ns);
  assert.deepEqual(log, ['add before']);
  await put(ns, 'one', { v: '1' });
  await put(ns, 'one', { v: '2' });
  await put(other, 'elsewhere');
  await client.delete(ConfigMaps, ns, 'before');
  await waitFor('events', () => log.length === 4);
  assert.deepEqual(log, ['add before', 'add one', 'update one', 'delete before']);
  assert.deepEqual(informer.get(`${ns}/one`)?.data, { v: '2' });
  assert.equal(informer.get(`${other}/elsewhere`), undefined);
  assert.ok(await converged(informer, ns));
});

test('recovers after the API server restarts: later changes arrive, no duplicates', async () => {
  const ns = await namespace();
  await put(ns, 'stays');
  await put(ns, 'goes');
  const { informer, log } = await watched(ns);
  await env.restartApiServer();
  await put(ns, 'new');
  await put(ns, 'stays', { v: '2' });
  await client.delete(ConfigMaps, ns, 'goes');
  await waitFor('cache converged', () => converged(informer, ns));
  await waitFor('delete event', () => log.includes('delete goes'));
  assert.equal(count(log, 'add new'), 1);
  assert.equal(count(log, 'add stays'), 1, 'no second add for an object already cached');
  assert.ok(log.includes('update stays'));
  assert.equal(informer.list(ns).length, 2);
});

test('recovers after the API server is down for a while', async () => {
  const ns = await namespace();
  const { informer, log, counts } = await watched(ns);
  await env.stopApiServer();
  const attempts = counts.lists + counts.watches;
  await waitFor('retries while down', () => counts.lists + counts.watches >= attempts + 2);
  assert.equal(informer.hasSynced(), true, 'the cache stays available while the server is away');
  await env.startApiServer();
  await put(ns, 'after-outage');
  await waitFor('event after outage', () => log.includes('add after-outage'));
  assert.ok(await converged(informer, ns));
});

test('changes made while partitioned arrive after reconnecting; deletions become delete events', async () => {
  const ns = await namespace();
  const proxy = new TcpProxy(new URL(env.server));
  await proxy.start();
  cleanups.push(() => proxy.close());
  const via = new KubeClient(await kubeConfigVia(env.kubeconfigPath, env.server, proxy.port));
  cleanups.push(() => via.close());
  await put(ns, 'updated');
  await put(ns, 'deleted');
  const { informer, log, counts } = await watched(ns, via);
  proxy.cut();
  await put(ns, 'added');
  await put(ns, 'updated', { v: '2' });
  await client.delete(ConfigMaps, ns, 'deleted');
  await waitFor('a failed reconnect', () => counts.watches >= 3);
  assert.equal(informer.get(`${ns}/added`), undefined, 'nothing arrives while partitioned');
  proxy.restore();
  await waitFor('cache converged', () => converged(informer, ns));
  await waitFor('events', () => log.includes('delete deleted'));
  assert.equal(count(log, 'add added'), 1);
  assert.equal(count(log, 'update updated'), 1);
  assert.equal(counts.lists, 1, 'resumed from its resourceVersion without relisting');
});

test('410 after compaction relists and turns the difference into events', async () => {
  const ns = await namespace();
  const proxy = new TcpProxy(new URL(env.server));
  await proxy.start();
  cleanups.push(() => proxy.close());
  const via = new KubeClient(await kubeConfigVia(env.kubeconfigPath, env.server, proxy.port));
  cleanups.push(() => via.close());
  await put(ns, 'updated');
  await put(ns, 'deleted');
  const { informer, log, counts } = await watched(ns, via);
  proxy.cut();
  await put(ns, 'added');
  await put(ns, 'updated', { v: '2' });
  await client.delete(ConfigMaps, ns, 'deleted');
  // Forget the history: etcd compacted, and a restarted API server's watch cache starts afresh.
  await compactEtcd(env.etcdUrl, (await client.list(ConfigMaps, { namespace: ns })).resourceVersion);
  await env.restartApiServer();
  proxy.restore();
  await waitFor('relist', () => counts.lists >= 2);
  await waitFor('cache converged', () => converged(informer, ns));
  assert.deepEqual(log.slice(2).sort(), ['add added', 'delete deleted', 'update updated']);
  assert.equal(informer.get(`${ns}/deleted`), undefined);
});

test('the watchdog restarts a watch that went silent', async () => {
  const ns = await namespace();
  const proxy = new TcpProxy(new URL(env.server));
  await proxy.start();
  cleanups.push(() => proxy.close());
  const via = new KubeClient(await kubeConfigVia(env.kubeconfigPath, env.server, proxy.port));
  cleanups.push(() => via.close());
  const { informer, log, counts } = await watched(ns, via, { watchdogMs: 1500 });
  const watches = counts.watches;
  proxy.freeze();
  await put(ns, 'during-stall');
  await waitFor('event after the watchdog fired', () => log.includes('add during-stall'));
  assert.ok(counts.watches > watches, 'a new watch was started');
  assert.ok(await converged(informer, ns));
});
