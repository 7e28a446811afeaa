/** The GPU environment of a replica process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gpuEnvironment } from './env.ts';

test('names exactly the replica devices, in order', () => {
  assert.deepEqual(gpuEnvironment(['0', '2']), { CUDA_VISIBLE_DEVICES: '0,2', RAYLINE_GPU_IDS: '0,2' });
});

test('is set to empty, not left unset, for a replica without GPUs', () => {
  const env = gpuEnvironment([]);
  assert.deepEqual(env, { CUDA_VISIBLE_DEVICES: '', RAYLINE_GPU_IDS: '' });
  assert.equal('CUDA_VISIBLE_DEVICES' in env, true);
});
