import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RayClusterSpecInput } from '../../schema/raycluster.ts';
import { clusterSpecHash, onlyGroupsAppended } from './cluster-spec.ts';

const template = (image: string) => ({ spec: { containers: [{ name: 'c', image }] } });
const spec = (overrides: Partial<RayClusterSpecInput> = {}): RayClusterSpecInput => ({
  headGroupSpec: { rayStartParams: {}, template: template('rayline:1') },
  workerGroupSpecs: [
    { groupName: 'cpu', replicas: 1, minReplicas: 0, maxReplicas: 5, template: template('rayline:1') },
  ],
  ...overrides,
});

test('the autoscaler fields and suspend do not change the hash; images and resources do', () => {
  const base = clusterSpecHash(spec());
  const scaled = spec({
    workerGroupSpecs: [
      {
        groupName: 'cpu',
        replicas: 4,
        minReplicas: 1,
        maxReplicas: 9,
        scaleStrategy: { workersToDelete: ['x'] },
        template: template('rayline:1'),
      },
    ],
  });
  assert.equal(clusterSpecHash(scaled), base);
  assert.equal(clusterSpecHash({ ...spec(), suspend: true }), base);
  assert.notEqual(clusterSpecHash(spec({ headGroupSpec: { template: template('rayline:2') } })), base);
  assert.notEqual(
    clusterSpecHash(
      spec({ workerGroupSpecs: [{ groupName: 'cpu', replicas: 1, template: template('rayline:2') }] }),
    ),
    base,
  );
});

test('key order in the manifest does not matter', () => {
  const reordered = JSON.parse(
    JSON.stringify({ workerGroupSpecs: spec().workerGroupSpecs, headGroupSpec: spec().headGroupSpec }),
  );
  assert.equal(clusterSpecHash(reordered), clusterSpecHash(spec()));
});

test('appended worker groups are an in-place update; a changed or removed group is not', () => {
  const current = spec();
  const gpu = { groupName: 'gpu', replicas: 0, template: template('rayline:1') };
  assert.equal(
    onlyGroupsAppended(current, spec({ workerGroupSpecs: [...(current.workerGroupSpecs ?? []), gpu] })),
    true,
  );
  assert.equal(onlyGroupsAppended(current, spec({ workerGroupSpecs: [gpu] })), false);
  assert.equal(onlyGroupsAppended(current, current), false);
});
