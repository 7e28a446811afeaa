import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workerGroupSpecSchema } from '../../schema/raycluster.ts';
import type { Pod } from './kube-types.ts';
import { desiredWorkers, planWorkers } from './worker-plan.ts';

const template = { spec: { containers: [{ name: 'w' }] } };
const group = (fields: Record<string, unknown>) =>
  workerGroupSpecSchema.parse({ groupName: 'g', template, ...fields });

function pod(name: string, phase = 'Running', ready = true, createdMinutesAgo = 10): Pod {
  return {
    metadata: { name, creationTimestamp: new Date(Date.now() - createdMinutesAgo * 60_000).toISOString() },
    status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

const manual = { autoscaling: false, clusterSuspended: false };
const autoscaled = { autoscaling: true, clusterSuspended: false };

test('desired = clamp(replicas, min, max) × numOfHosts, zero when suspended', () => {
  assert.equal(desiredWorkers(group({ replicas: 5, maxReplicas: 3 }), false), 3);
  assert.equal(desiredWorkers(group({ replicas: 0, minReplicas: 2 }), false), 2);
  assert.equal(desiredWorkers(group({ replicas: 2, numOfHosts: 4 }), false), 8);
  assert.equal(desiredWorkers(group({ replicas: 2, suspend: true }), false), 0);
  assert.equal(desiredWorkers(group({ replicas: 2 }), true), 0);
});

test('scaling up creates the difference', () => {
  assert.deepEqual(planWorkers(group({ replicas: 3 }), [pod('a')], manual), {
    desired: 3,
    deletions: [],
    creations: 2,
  });
});

test('without autoscaling, surplus pods go: not-ready first, then the youngest', () => {
  const plan = planWorkers(
    group({ replicas: 1 }),
    [pod('old'), pod('young', 'Running', true, 1), pod('pending', 'Pending', false, 20)],
    manual,
  );
  assert.deepEqual(plan.deletions, [
    { name: 'pending', reason: 'surplus' },
    { name: 'young', reason: 'surplus' },
  ]);
});

test('with autoscaling, surplus pods stay until the autoscaler names them in workersToDelete', () => {
  const pods = [pod('a'), pod('b'), pod('c')];
  assert.deepEqual(planWorkers(group({ replicas: 1 }), pods, autoscaled).deletions, []);
  const named = planWorkers(
    group({ replicas: 1, scaleStrategy: { workersToDelete: ['b', 'gone'] } }),
    pods,
    autoscaled,
  );
  assert.deepEqual(named, {
    desired: 1,
    deletions: [{ name: 'b', reason: 'workersToDelete' }],
    creations: 0,
  });
});

test('workersToDelete deletes exactly those pods, and replacements are created when replicas did not drop', () => {
  const plan = planWorkers(
    group({ replicas: 3, scaleStrategy: { workersToDelete: ['a', 'c'] } }),
    [pod('a'), pod('b'), pod('c')],
    manual,
  );
  assert.deepEqual(
    plan.deletions.map((d) => d.name),
    ['a', 'c'],
  );
  assert.equal(plan.creations, 2);
});

test('Failed and Succeeded pods are deleted and replaced', () => {
  const plan = planWorkers(
    group({ replicas: 2 }),
    [pod('ok'), pod('dead', 'Failed', false), pod('done', 'Succeeded', false)],
    manual,
  );
  assert.deepEqual(plan.deletions, [
    { name: 'dead', reason: 'finished' },
    { name: 'done', reason: 'finished' },
  ]);
  assert.equal(plan.creations, 1);
});

test('a suspended group loses every pod, even with autoscaling', () => {
  const plan = planWorkers(group({ replicas: 2, suspend: true }), [pod('a'), pod('b')], autoscaled);
  assert.deepEqual(plan.deletions.map((d) => d.name).sort(), ['a', 'b']);
});
