import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rayClusterSpecSchema } from '../../schema/raycluster.ts';
import type { Pod } from './kube-types.ts';
import { computeClusterStatus, setCondition } from './status.ts';

const spec = rayClusterSpecSchema.parse({
  headGroupSpec: {
    template: { spec: { containers: [{ name: 'h', resources: { limits: { cpu: '2', memory: '4Gi' } } }] } },
  },
  workerGroupSpecs: [
    {
      groupName: 'gpu',
      replicas: 2,
      minReplicas: 1,
      maxReplicas: 4,
      template: {
        spec: {
          containers: [
            { name: 'w', resources: { limits: { cpu: '1500m', memory: '8Gi', 'nvidia.com/gpu': 1 } } },
          ],
        },
      },
    },
  ],
});

function pod(name: string, type: 'head' | 'worker', ready: boolean): Pod {
  return {
    metadata: {
      name,
      labels: { 'rayline.dev/node-type': type, 'rayline.dev/group': type === 'head' ? 'headgroup' : 'gpu' },
    },
    status: {
      phase: ready ? 'Running' : 'Pending',
      podIP: ready ? `10.1.0.${name.length}` : undefined,
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

const base = {
  spec,
  generation: 3,
  previous: undefined,
  headService: undefined,
  now: '2026-11-28T00:00:00Z',
};

test('counts, desired resources and head addresses', () => {
  const status = computeClusterStatus({
    ...base,
    pods: [pod('head', 'head', true), pod('w1', 'worker', true), pod('w22', 'worker', false)],
    headService: { metadata: { name: 'demo-head-svc' }, spec: { clusterIP: 'None' } },
  });
  assert.equal(status.desiredWorkerReplicas, 2);
  assert.equal(status.readyWorkerReplicas, 1);
  assert.equal(status.availableWorkerReplicas, 1);
  assert.equal(status.minWorkerReplicas, 1);
  assert.equal(status.maxWorkerReplicas, 4);
  assert.equal(status.desiredCPU, '5');
  assert.equal(status.desiredMemory, '20Gi');
  assert.equal(status.desiredGPU, '2');
  assert.deepEqual(status.head, {
    podName: 'head',
    podIP: '10.1.0.4',
    serviceName: 'demo-head-svc',
    serviceIP: '10.1.0.4',
  });
  assert.equal(status.observedGeneration, 3);
  assert.equal(status.state, undefined);
  const byType = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
  assert.equal(byType.HeadPodReady?.status, 'True');
  assert.equal(byType.RayClusterProvisioned?.status, 'False');
  assert.equal(byType.ReplicaFailure?.status, 'False');
});

test('ready once every pod is ready; Provisioned stays True after a worker is lost; failures surface', () => {
  const ready = computeClusterStatus({
    ...base,
    pods: [pod('head', 'head', true), pod('w1', 'worker', true), pod('w2', 'worker', true)],
  });
  assert.equal(ready.state, 'ready');
  const later = computeClusterStatus({
    ...base,
    now: '2026-11-28T00:05:00Z',
    previous: ready,
    pods: [pod('head', 'head', true), pod('w1', 'worker', true)],
    failure: { reason: 'FailedCreateWorkerPod', message: 'pods "x" is forbidden: exceeded quota' },
  });
  const byType = Object.fromEntries((later.conditions ?? []).map((c) => [c.type, c]));
  assert.equal(byType.RayClusterProvisioned?.status, 'True');
  assert.equal(byType.RayClusterProvisioned?.lastTransitionTime, '2026-11-28T00:00:00Z');
  assert.deepEqual(
    [byType.ReplicaFailure?.status, byType.ReplicaFailure?.reason, byType.ReplicaFailure?.lastTransitionTime],
    ['True', 'FailedCreateWorkerPod', '2026-11-28T00:05:00Z'],
  );
});

test('suspended clusters want nothing', () => {
  const status = computeClusterStatus({ ...base, spec: { ...spec, suspend: true }, pods: [] });
  assert.deepEqual([status.state, status.desiredWorkerReplicas, status.desiredCPU], ['suspended', 0, '0']);
});

test('setCondition keeps the transition time while the status holds', () => {
  const first = setCondition([], { type: 'X', status: 'True', reason: 'A', lastTransitionTime: 't1' });
  const same = setCondition(first, { type: 'X', status: 'True', reason: 'B', lastTransitionTime: 't2' });
  const flipped = setCondition(same, { type: 'X', status: 'False', reason: 'C', lastTransitionTime: 't3' });
  assert.deepEqual(
    [same[0]?.lastTransitionTime, same[0]?.reason, flipped[0]?.lastTransitionTime],
    ['t1', 'B', 't3'],
  );
});
