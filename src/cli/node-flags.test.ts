import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaylineError } from '../errors.ts';
import { parseNodeFlags } from './node-flags.ts';

test('node flags become the resources and labels the node declares', () => {
  assert.deepEqual(
    parseNodeFlags({
      numCpus: '8',
      numGpus: '1',
      memory: String(32 * 2 ** 30),
      resources: '{"TPU": 4}',
      labels: '{"zone": "a"}',
      autoscalingProvider: 'kubernetes',
    }),
    {
      resources: { TPU: 4, CPU: 8, GPU: 1, memory: 32 * 2 ** 30 },
      labels: { zone: 'a' },
      autoscalingProvider: 'kubernetes',
    },
  );
  assert.deepEqual(parseNodeFlags({}), { resources: {}, labels: {} });
});

test('bad node flags name the flag', () => {
  const cases: [Parameters<typeof parseNodeFlags>[0], RegExp][] = [
    [{ numCpus: 'four' }, /--num-cpus must be a non-negative number/],
    [{ numGpus: '-1' }, /--num-gpus/],
    [{ resources: '[1]' }, /--resources must be a JSON object/],
    [{ resources: '{"TPU": "4"}' }, /--resources: 'TPU'/],
    [{ labels: '{"a": 1}' }, /--labels: 'a'/],
    [{ autoscalingProvider: 'aws' }, /--autoscaling-provider must be 'kubernetes'/],
  ];
  for (const [flags, message] of cases) {
    assert.throws(
      () => parseNodeFlags(flags),
      (err: unknown) => err instanceof RaylineError && message.test(err.message),
    );
  }
});
