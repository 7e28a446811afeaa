import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeApiError } from './api-error.ts';
import {
  addFinalizer,
  controllerOf,
  controllerOwnerReference,
  hasFinalizer,
  isOwnedBy,
  removeFinalizer,
  retryOnConflict,
} from './owner.ts';
import { type KubeObject, Pods } from './resources.ts';

const owner: KubeObject = {
  apiVersion: 'rayline.dev/v1',
  kind: 'RayCluster',
  metadata: { name: 'demo', namespace: 'ns', uid: 'u-1' },
};

test('controllerOwnerReference names the owner and blocks its deletion', () => {
  assert.deepEqual(controllerOwnerReference(owner), {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    name: 'demo',
    uid: 'u-1',
    controller: true,
    blockOwnerDeletion: true,
  });
  assert.throws(() => controllerOwnerReference({ kind: 'RayCluster', metadata: { name: 'x' } }), /lacks/);
});

test('isOwnedBy matches by uid; controllerOf finds the controller reference', () => {
  const pod: KubeObject = {
    metadata: {
      name: 'p',
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Other', name: 'o', uid: 'u-0' },
        controllerOwnerReference(owner),
      ],
    },
  };
  assert.equal(isOwnedBy(pod, owner), true);
  assert.equal(isOwnedBy(pod, { ...owner, metadata: { ...owner.metadata, uid: 'u-2' } }), false);
  assert.equal(controllerOf(pod)?.uid, 'u-1');
  assert.equal(controllerOf({ metadata: {} }), undefined);
});

test('finalizer helpers send a merge patch guarded by resourceVersion, and skip no-ops', async () => {
  const patches: { name: string; body: object }[] = [];
  const client = {
    async patch<T extends KubeObject>(
      _r: unknown,
      _ns: string | undefined,
      name: string,
      type: string,
      body: object,
    ) {
      assert.equal(type, 'merge');
      patches.push({ name, body });
      return body as T;
    },
  };
  const obj: KubeObject = {
    metadata: { name: 'p', namespace: 'ns', resourceVersion: '5', finalizers: ['a'] },
  };
  await addFinalizer(client, Pods, obj, 'rayline.dev/cleanup');
  assert.deepEqual(patches[0], {
    name: 'p',
    body: { metadata: { resourceVersion: '5', finalizers: ['a', 'rayline.dev/cleanup'] } },
  });
  assert.equal(await addFinalizer(client, Pods, obj, 'a'), obj, 'already present: no request');
  await removeFinalizer(client, Pods, obj, 'a');
  assert.deepEqual(patches[1]!.body, { metadata: { resourceVersion: '5', finalizers: [] } });
  assert.equal(await removeFinalizer(client, Pods, obj, 'absent'), obj);
  assert.equal(patches.length, 2);
  assert.equal(hasFinalizer(obj, 'a'), true);
});

test('retryOnConflict retries conflicts only, up to the attempt limit', async () => {
  const conflict = () => new KubeApiError('PUT', '/x', 409, 'Conflict', 'changed');
  let n = 0;
  const value = await retryOnConflict(
    async () => {
      if (++n < 3) throw conflict();
      return 'ok';
    },
    { attempts: 3, baseDelayMs: 1 },
  );
  assert.equal(value, 'ok');
  assert.equal(n, 3);

  n = 0;
  await assert.rejects(
    retryOnConflict(
      async () => {
        n++;
        throw conflict();
      },
      { attempts: 2, baseDelayMs: 1 },
    ),
    /409 Conflict/,
  );
  assert.equal(n, 2);

  n = 0;
  await assert.rejects(
    retryOnConflict(async () => {
      n++;
      throw new KubeApiError('POST', '/x', 409, 'AlreadyExists', 'exists');
    }, 5),
    /AlreadyExists/,
  );
  assert.equal(n, 1, 'AlreadyExists is not a conflict to retry');
});
