import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeResources, resourceFlags } from './node-resources.ts';

test('resourceFlags: ceil of cpu limit else request, memory limit in bytes, first *gpu limit, accelerators as resources', () => {
  assert.deepEqual(
    resourceFlags({
      name: 'c',
      resources: { requests: { cpu: '1500m' }, limits: { memory: '1Gi', 'amd.com/gpu': 2 } },
    }),
    {
      'num-cpus': '2',
      memory: String(2 ** 30),
      'num-gpus': '2',
    },
  );
  assert.deepEqual(resourceFlags({ name: 'c', resources: { limits: { cpu: '3', 'google.com/tpu': '4' } } }), {
    'num-cpus': '3',
    resources: '{"TPU":4}',
  });
  assert.deepEqual(resourceFlags({ name: 'c' }), {});
});

test('nodeResources: what the node registers with, rayStartParams first', () => {
  const container = { name: 'c', resources: { limits: { cpu: '8', memory: '32Gi', 'nvidia.com/gpu': 1 } } };
  assert.deepEqual(nodeResources(container, {}), { CPU: 8, GPU: 1, memory: 32 * 2 ** 30 });
  assert.deepEqual(nodeResources(container, { 'num-cpus': '4', resources: '{"accelerator_type:A100":1}' }), {
    CPU: 4,
    GPU: 1,
    memory: 32 * 2 ** 30,
    'accelerator_type:A100': 1,
  });
});
