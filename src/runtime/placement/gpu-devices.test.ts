/**
 * GPU devices of one node: whole requests take whole unused devices, fractions share one device and
 * never span two, and giving back restores exactly what was there.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GpuDevices } from './gpu-devices.ts';

describe('GpuDevices', () => {
  test('whole requests take distinct unused devices, lowest first', () => {
    const gpus = new GpuDevices(['0', '1', '2', '3']);
    assert.deepEqual(gpus.take(1), { gpuIds: ['0'] });
    assert.deepEqual(gpus.take(2), { gpuIds: ['1', '2'] });
    assert.equal(gpus.take(2), undefined);
    assert.deepEqual(gpus.take(1), { gpuIds: ['3'] });
    assert.equal(gpus.freeTotal(), 0);
  });

  test('two 0.5 share a device, the third goes to the next one', () => {
    const gpus = new GpuDevices(['0', '1']);
    assert.deepEqual(gpus.take(0.5), { gpuIds: ['0'], gpuFractions: { '0': 0.5 } });
    assert.deepEqual(gpus.take(0.5), { gpuIds: ['0'], gpuFractions: { '0': 0.5 } });
    assert.deepEqual(gpus.take(0.5), { gpuIds: ['1'], gpuFractions: { '1': 0.5 } });
    assert.deepEqual(gpus.used(), { '0': 1, '1': 0.5 });
  });

  test('a fraction goes onto the fullest device that has room, keeping whole devices free', () => {
    const gpus = new GpuDevices(['0', '1', '2']);
    gpus.take(0.25); // device 0
    gpus.take(1); // device 1
    gpus.take(0.7); // device 0 has 0.75 left: shares it rather than opening device 2
    assert.deepEqual(gpus.used(), { '0': 0.95, '1': 1 });
    assert.equal(gpus.canTake(1), true);
    assert.deepEqual(gpus.take(0.1), { gpuIds: ['2'], gpuFractions: { '2': 0.1 } });
  });

  test('a fraction never spans devices: 0.2 + 0.4 free does not hold 0.5', () => {
    const gpus = new GpuDevices(['0', '1']);
    gpus.take(0.4);
    gpus.take(0.4);
    assert.deepEqual(gpus.take(0.6), { gpuIds: ['1'], gpuFractions: { '1': 0.6 } });
    assert.deepEqual(gpus.used(), { '0': 0.8, '1': 0.6 });
    assert.equal(gpus.canTake(0.5), false);
    assert.equal(gpus.take(0.5), undefined);
    assert.ok(Math.abs(gpus.freeTotal() - 0.6) < 1e-9);
  });

  test('a whole GPU needs an unused device, not two halves', () => {
    const gpus = new GpuDevices(['0', '1']);
    gpus.take(0.5);
    gpus.take(1);
    assert.equal(gpus.freeTotal(), 0.5);
    assert.equal(gpus.canTake(1), false);
  });

  test('giving back restores exactly, without float residue', () => {
    const gpus = new GpuDevices(['0']);
    const takes = [gpus.take(0.1)!, gpus.take(0.2)!, gpus.take(0.7)!];
    assert.equal(gpus.canTake(0.01), false);
    for (const take of takes) gpus.give(take);
    assert.deepEqual(gpus.used(), {});
    assert.deepEqual(gpus.free(), { '0': 1 });
  });

  test('force marks reported devices, adds unknown ones, and names overcommitted ones', () => {
    const gpus = new GpuDevices(['0', '1']);
    assert.deepEqual(gpus.force({ gpuIds: ['1'] }), []);
    assert.deepEqual(gpus.force({ gpuIds: ['1'], gpuFractions: { '1': 0.5 } }), ['1']);
    assert.deepEqual(gpus.force({ gpuIds: ['7'] }), []);
    assert.deepEqual(gpus.ids, ['0', '1', '7']);
  });

  test('reset keeps what is taken on devices that remain', () => {
    const gpus = new GpuDevices(['0', '1']);
    gpus.take(1);
    gpus.reset(['0', '1', '2', '3']);
    assert.deepEqual(gpus.used(), { '0': 1 });
    assert.deepEqual(gpus.take(3), { gpuIds: ['1', '2', '3'] });
  });
});
