import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssues } from './issues.ts';
import { rayClusterSpecSchema } from './raycluster.ts';

const template = { spec: { containers: [{ name: 'rayline', image: 'rayline/rayline:0.1.0' }] } };

test('worker groups take KubeRay defaults: replicas 0, min 0, max 2147483647, numOfHosts 1', () => {
  const spec = rayClusterSpecSchema.parse({
    headGroupSpec: { template },
    workerGroupSpecs: [{ groupName: 'cpu', template }],
  });
  const [group] = spec.workerGroupSpecs;
  assert.deepEqual(
    [group?.replicas, group?.minReplicas, group?.maxReplicas, group?.numOfHosts],
    [0, 0, 2147483647, 1],
  );
  assert.deepEqual(spec.headGroupSpec.rayStartParams, {});
});

test('pod templates keep fields Rayline does not model', () => {
  const spec = rayClusterSpecSchema.parse({
    headGroupSpec: {
      template: {
        spec: { nodeSelector: { pool: 'gpu' }, containers: [{ name: 'h', volumeMounts: [{ name: 'm' }] }] },
      },
    },
  });
  assert.deepEqual(spec.headGroupSpec.template.spec.nodeSelector, { pool: 'gpu' });
  assert.deepEqual(spec.headGroupSpec.template.spec.containers[0]?.volumeMounts, [{ name: 'm' }]);
});

test('errors name the field: duplicate groups, min above max, bad group names, missing containers', () => {
  const result = rayClusterSpecSchema.safeParse({
    headGroupSpec: { template: { spec: { containers: [] } } },
    workerGroupSpecs: [
      { groupName: 'gpu', minReplicas: 3, maxReplicas: 1, template },
      { groupName: 'gpu', template },
      { groupName: 'GPU_workers', template },
    ],
  });
  assert.equal(result.success, false);
  const paths = formatIssues(result.error).map((i) => i.path);
  assert.deepEqual(paths.sort(), [
    'headGroupSpec.template.spec.containers',
    'workerGroupSpecs[0].minReplicas',
    'workerGroupSpecs[1].groupName',
    'workerGroupSpecs[2].groupName',
  ]);
});
