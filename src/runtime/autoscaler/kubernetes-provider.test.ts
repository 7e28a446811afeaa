/**
 * shapeOf(): a RayCluster spec as the planner sees it, without an API server (the provider's calls
 * are tested against a real one in test/autoscaler-kubernetes.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rayClusterSpecSchema } from '../../schema/raycluster.ts';
import { shapeOf } from './kubernetes-provider.ts';

const template = (limits: Record<string, string>) => ({
  spec: { containers: [{ name: 'rayline', resources: { limits } }] },
});

function spec(extra: Record<string, unknown>, groups: Record<string, unknown>[]) {
  return rayClusterSpecSchema.parse({
    headGroupSpec: { template: template({ cpu: '1' }) },
    workerGroupSpecs: groups.map((g) => ({ template: template({ cpu: '4', 'nvidia.com/gpu': '1' }), ...g })),
    ...extra,
  });
}

test('multi-host groups count hosts; defaults fill the rest', () => {
  assert.deepEqual(shapeOf(spec({}, [{ groupName: 'gpu', minReplicas: 1, maxReplicas: 3, numOfHosts: 4 }])), {
    groups: [{ name: 'gpu', resourcesPerWorker: { CPU: 4, GPU: 1 }, minWorkers: 4, maxWorkers: 12 }],
    idleTimeoutS: 60,
    upscalingMode: 'Default',
  });
});

test('a suspended group, or a suspended cluster, may have no workers', () => {
  const groups = [
    { groupName: 'a', minReplicas: 1, maxReplicas: 2, suspend: true },
    { groupName: 'b', minReplicas: 1, maxReplicas: 2, idleTimeoutSeconds: 0 },
  ];
  const limits = (s: ReturnType<typeof spec>) =>
    shapeOf(s).groups.map((g) => [g.name, g.minWorkers, g.maxWorkers, g.idleTimeoutS]);
  assert.deepEqual(limits(spec({}, groups)), [
    ['a', 0, 0, undefined],
    ['b', 1, 2, 0],
  ]);
  assert.deepEqual(limits(spec({ suspend: true }, groups)), [
    ['a', 0, 0, undefined],
    ['b', 0, 0, 0],
  ]);
});
