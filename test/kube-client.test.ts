/**
 * KubeClient, finalizer helpers and EventRecorder against a real kube-apiserver: every verb, the
 * errors reconcilers branch on, preconditions, the status subresource of Rayline's own CRD, and
 * Events counted on the server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isAlreadyExists, isConflict, isNotFound, KubeApiError } from '../src/operator/kube/api-error.ts';
import { KubeClient, type WatchEvent } from '../src/operator/kube/client.ts';
import { type CoreEvent, EventRecorder } from '../src/operator/kube/events.ts';
import {
  addFinalizer,
  controllerOwnerReference,
  removeFinalizer,
  retryOnConflict,
} from '../src/operator/kube/owner.ts';
import {
  ConfigMaps,
  Events,
  type KubeObject,
  Namespaces,
  Pods,
  RayClusters,
} from '../src/operator/kube/resources.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { waitFor } from './kube/support.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}
interface Pod extends KubeObject {
  spec?: { containers: { name: string; image: string }[] };
  status?: { phase?: string };
}
interface RayCluster extends KubeObject {
  spec?: Record<string, unknown>;
  status?: { state?: string };
}

const ns = 'client-test';
let env: KubeTestEnv;
let client: KubeClient;

before(async () => {
  env = await startKubeTestEnv();
  client = new KubeClient(env.kubeConfig);
  await client.create(Namespaces, { metadata: { name: ns } });
});

after(async () => {
  await client?.close();
  await env?.stop();
});

const cm = (name: string, data: Record<string, string> = {}): ConfigMap => ({
  metadata: { name, namespace: ns },
  data,
});

test('create, get, list with a label selector, replace and delete', async () => {
  const created = await client.create(ConfigMaps, {
    ...cm('a', { k: '1' }),
    metadata: { name: 'a', namespace: ns, labels: { app: 'x' } },
  });
  assert.equal(created.kind, 'ConfigMap');
  await client.create(ConfigMaps, cm('b'));
  const got = await client.get<ConfigMap>(ConfigMaps, ns, 'a');
  assert.deepEqual(got?.data, { k: '1' });
  assert.equal(await client.get(ConfigMaps, ns, 'missing'), null);
  const listed = await client.list<ConfigMap>(ConfigMaps, { namespace: ns, labelSelector: 'app=x' });
  assert.deepEqual(
    listed.items.map((i) => i.metadata?.name),
    ['a'],
  );
  assert.equal(listed.items[0]!.apiVersion, 'v1', 'list items get apiVersion and kind');
  assert.equal(listed.items[0]!.kind, 'ConfigMap');
  assert.match(listed.resourceVersion, /^\d+$/);
  const all = await client.list<ConfigMap>(ConfigMaps, { fieldSelector: `metadata.namespace=${ns}` });
  assert.deepEqual(all.items.map((i) => i.metadata?.name).sort(), ['a', 'b'], 'all namespaces, by field');
  const replaced = await client.replace(ConfigMaps, { ...got!, data: { k: '2' } });
  assert.deepEqual(replaced.data, { k: '2' });
  await client.delete(ConfigMaps, ns, 'b');
  assert.equal(await client.get(ConfigMaps, ns, 'b'), null);
});

test('errors carry status code and reason; helpers classify them', async () => {
  await client.create(ConfigMaps, cm('dup'));
  const dup = await client.create(ConfigMaps, cm('dup')).catch((e: unknown) => e);
  assert.ok(dup instanceof KubeApiError);
  assert.equal(dup.statusCode, 409);
  assert.equal(dup.reason, 'AlreadyExists');
  assert.match(
    dup.message,
    /^POST \/api\/v1\/namespaces\/client-test\/configmaps: 409 AlreadyExists: .*already exists/,
  );
  assert.ok(isAlreadyExists(dup) && !isConflict(dup));

  const current = (await client.get<ConfigMap>(ConfigMaps, ns, 'dup'))!;
  await client.replace(ConfigMaps, { ...current, data: { v: 'new' } });
  const stale = await client
    .replace(ConfigMaps, { ...current, data: { v: 'stale' } })
    .catch((e: unknown) => e);
  assert.ok(isConflict(stale), String(stale));

  const missing = await client.delete(ConfigMaps, ns, 'nope').catch((e: unknown) => e);
  assert.ok(isNotFound(missing));
  const badUid = await client
    .delete(ConfigMaps, ns, 'dup', { preconditions: { uid: 'not-the-uid' } })
    .catch((e: unknown) => e);
  assert.ok(isConflict(badUid), 'a uid precondition that fails is a conflict');
  await client.delete(ConfigMaps, ns, 'dup', { preconditions: { uid: current.metadata!.uid! } });

  const invalid = await client.create(ConfigMaps, cm('Not_A_Valid_Name')).catch((e: unknown) => e);
  assert.equal((invalid as KubeApiError).reason, 'Invalid');
});

test('merge, JSON, strategic and server-side apply patches', async () => {
  await client.create(ConfigMaps, cm('p', { a: '1' }));
  let obj = await client.patch<ConfigMap>(ConfigMaps, ns, 'p', 'merge', { data: { b: '2' } });
  assert.deepEqual(obj.data, { a: '1', b: '2' });
  obj = await client.patch<ConfigMap>(ConfigMaps, ns, 'p', 'json', [{ op: 'remove', path: '/data/a' }]);
  assert.deepEqual(obj.data, { b: '2' });
  obj = await client.patch<ConfigMap>(ConfigMaps, ns, 'p', 'strategic', { data: { c: '3' } });
  assert.deepEqual(obj.data, { b: '2', c: '3' });
  const applied = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'p', namespace: ns },
    data: { b: 'mine' },
  };
  obj = await client.patch<ConfigMap>(ConfigMaps, ns, 'p', 'apply', applied, {
    fieldManager: 'test',
    force: true,
  });
  assert.equal(obj.data?.b, 'mine');
  const dry = await client.patch<ConfigMap>(
    ConfigMaps,
    ns,
    'p',
    'merge',
    { data: { d: '4' } },
    { dryRun: true },
  );
  assert.equal(dry.data?.d, '4');
  assert.equal(
    (await client.get<ConfigMap>(ConfigMaps, ns, 'p'))?.data?.d,
    undefined,
    'dry run changed nothing',
  );
});

test('status subresource of a RayCluster: spec and status are written separately', async () => {
  const rc: RayCluster = {
    metadata: { name: 'rc', namespace: ns },
    spec: {
      headGroupSpec: { template: { spec: { containers: [{ name: 'head', image: 'rayline:test' }] } } },
    },
  };
  const created = await client.create(RayClusters, rc);
  assert.equal(created.apiVersion, 'rayline.dev/v1');
  const patched = await client.patchStatus<RayCluster>(RayClusters, ns, 'rc', 'merge', {
    status: { state: 'ready' },
  });
  assert.equal(patched.status?.state, 'ready');
  const ignored = await client.patch<RayCluster>(RayClusters, ns, 'rc', 'merge', {
    status: { state: 'suspended' },
  });
  assert.equal(ignored.status?.state, 'ready', 'the main resource ignores status');
  const replaced = await client.replaceStatus(RayClusters, { ...patched, status: { state: 'failed' } });
  assert.equal(replaced.status?.state, 'failed');
  assert.equal(
    replaced.metadata?.generation,
    created.metadata?.generation,
    'status writes leave generation alone',
  );
});

test('a watch streams events from a resourceVersion until aborted', async () => {
  const { resourceVersion } = await client.list(ConfigMaps, { namespace: ns });
  const events: WatchEvent<ConfigMap>[] = [];
  const ac = new AbortController();
  const done = client.watch<ConfigMap>(
    ConfigMaps,
    { namespace: ns, resourceVersion, timeoutSeconds: 60 },
    (e) => events.push(e),
    ac.signal,
  );
  await client.create(ConfigMaps, cm('w1'));
  await client.patch(ConfigMaps, ns, 'w1', 'merge', { data: { x: 'y' } });
  await client.delete(ConfigMaps, ns, 'w1');
  await waitFor('three events', () => events.filter((e) => e.type !== 'BOOKMARK').length >= 3);
  ac.abort();
  await done; // resolves on abort
  assert.deepEqual(
    events
      .filter((e) => e.type !== 'BOOKMARK')
      .map((e) => `${e.type} ${(e.object as ConfigMap).metadata?.name}`),
    ['ADDED w1', 'MODIFIED w1', 'DELETED w1'],
  );
});

test('requests to a stopped API server fail with a ConnectionFailed KubeApiError', async () => {
  const dead = new KubeClient(env.kubeConfig);
  await env.stopApiServer();
  try {
    const err = await dead.get(ConfigMaps, ns, 'x').catch((e: unknown) => e);
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.statusCode, 0);
    assert.equal(err.reason, 'ConnectionFailed');
    assert.match(err.message, /^GET \/api\/v1\/namespaces\/client-test\/configmaps\/x: .*ECONNREFUSED/);
  } finally {
    await env.startApiServer();
    await dead.close();
  }
});

test('finalizers: added and removed with a resourceVersion guard; stale writes conflict and retry', async () => {
  const owner = await client.create(ConfigMaps, cm('owner'));
  const pod = await client.create<Pod>(Pods, {
    metadata: { name: 'fin', namespace: ns, ownerReferences: [controllerOwnerReference(owner)] },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  });
  assert.equal(pod.metadata?.ownerReferences?.[0]?.uid, owner.metadata?.uid);
  const withF = await addFinalizer(client, Pods, pod, 'rayline.dev/a');
  assert.deepEqual(withF.metadata?.finalizers, ['rayline.dev/a']);
  // pod is now stale: a second finalizer from the old read must not clobber the first.
  const stale = await addFinalizer(client, Pods, pod, 'rayline.dev/b').catch((e: unknown) => e);
  assert.ok(isConflict(stale), String(stale));
  let attempts = 0;
  const both = await retryOnConflict(async () => {
    attempts++;
    const fresh = attempts === 1 ? pod : (await client.get<Pod>(Pods, ns, 'fin'))!;
    return addFinalizer(client, Pods, fresh, 'rayline.dev/b');
  });
  assert.equal(attempts, 2);
  assert.deepEqual(both.metadata?.finalizers, ['rayline.dev/a', 'rayline.dev/b']);
  const status = await client.patchStatus<Pod>(Pods, ns, 'fin', 'merge', { status: { phase: 'Running' } });
  assert.equal(status.status?.phase, 'Running');
  await client.delete(Pods, ns, 'fin', { gracePeriodSeconds: 0 });
  const terminating = (await client.get<Pod>(Pods, ns, 'fin'))!;
  assert.ok(terminating.metadata?.deletionTimestamp, 'finalizers hold the pod');
  let left = await removeFinalizer(client, Pods, terminating, 'rayline.dev/a');
  left = await removeFinalizer(client, Pods, left, 'rayline.dev/b');
  await waitFor('pod gone', async () => (await client.get(Pods, ns, 'fin')) === null);
});

test('EventRecorder writes Events and counts repeats on the server', async () => {
  const involved = await client.create(ConfigMaps, cm('evented'));
  const recorder = new EventRecorder({ client, instance: 'test-operator' });
  recorder.event(involved, 'Normal', 'Created', 'made a thing');
  recorder.event(involved, 'Normal', 'Created', 'made a thing');
  recorder.event(involved, 'Warning', 'Failed', 'broke a thing');
  await recorder.flush();
  const events = (
    await client.list<CoreEvent>(Events, {
      namespace: ns,
      fieldSelector: `involvedObject.uid=${involved.metadata?.uid}`,
    })
  ).items;
  const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
  assert.equal(events.length, 2);
  assert.equal(byReason.Created?.count, 2);
  assert.equal(byReason.Created?.type, 'Normal');
  assert.equal(byReason.Created?.source.component, 'rayline-operator');
  assert.equal(byReason.Created?.involvedObject.name, 'evented');
  assert.equal(byReason.Failed?.type, 'Warning');
  assert.equal(byReason.Failed?.count, 1);
});
