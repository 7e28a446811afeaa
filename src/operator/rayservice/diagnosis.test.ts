import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../raycluster/kube-types.ts';
import { diagnosePods } from './diagnosis.ts';

function unschedulable(name: string, message: string): Pod {
  return {
    metadata: { name },
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }],
    },
  };
}

test('every unschedulable pod is named, grouped by the scheduler message', () => {
  const cpu = '0/1 nodes are available: 1 Insufficient cpu.';
  const gpu = '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.';
  const diagnosis = diagnosePods([
    { metadata: { name: 'running' }, status: { phase: 'Running' } },
    unschedulable('w-2', gpu),
    unschedulable('head', cpu),
    unschedulable('w-1', gpu),
  ]);
  assert.deepEqual(diagnosis, {
    reason: 'PodUnschedulable',
    message: `pods w-1, w-2 cannot be scheduled: ${gpu}; pod head cannot be scheduled: ${cpu}`,
  });
});

test('a crashing container is reported when every pod is scheduled', () => {
  const diagnosis = diagnosePods([
    {
      metadata: { name: 'head' },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'rayline',
            ready: false,
            restartCount: 3,
            image: 'i',
            imageID: '',
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off' } },
          },
        ],
      },
    },
  ]);
  assert.deepEqual(diagnosis, {
    reason: 'CrashLoopBackOff',
    message: 'pod head container rayline: CrashLoopBackOff: back-off',
  });
});
