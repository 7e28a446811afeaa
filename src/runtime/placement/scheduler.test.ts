/**
 * Scheduling replicas without bundles: where they land (spread, GPUs, fractions, memory, custom
 * resources, per-node limits), what the ledger holds afterwards, and what a pass leaves alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gpuEnvironment } from './env.ts';
import { ResourceLedger } from './ledger.ts';
import { existingFrom, GiB, gpusOf, node, nodesOf, replica, replicas, run } from './test-support.ts';

describe('spreading', () => {
  test('replicas of one deployment spread across nodes, ties broken by node id', () => {
    const { placements } = run([node('b', { CPU: 8 }), node('a', { CPU: 8 })], replicas('r', 4, { CPU: 1 }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'a', 'r-1': 'b', 'r-2': 'a', 'r-3': 'b' });
  });

  test('running replicas count: new ones go where the deployment has fewest', () => {
    const existing = [
      { replicaId: 'old-0', deployment: 'app/Model', nodeId: 'a' },
      { replicaId: 'old-1', deployment: 'app/Model', nodeId: 'a' },
      { replicaId: 'other', deployment: 'app/Other', nodeId: 'b' },
    ];
    const { placements } = run([node('a', { CPU: 8 }), node('b', { CPU: 8 })], replicas('r', 3, { CPU: 1 }), {
      existing,
    });
    assert.deepEqual(nodesOf(placements), { 'r-0': 'b', 'r-1': 'b', 'r-2': 'a' });
  });

  test('with equal counts, the node with most free resources wins', () => {
    const { placements } = run([node('a', { CPU: 4 }), node('b', { CPU: 16 })], replicas('r', 1, { CPU: 1 }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'b' });
  });

  test('CPU replicas avoid GPU and custom-resource nodes while counts tie, then spread onto them', () => {
    const nodes = [
      node('a-gpu', { CPU: 16, GPU: 1 }),
      node('b-tpu', { CPU: 16, TPU: 4 }),
      node('c-cpu', { CPU: 4 }),
      node('d-cpu', { CPU: 4 }),
    ];
    const { placements } = run(nodes, replicas('r', 4, { CPU: 1 }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'c-cpu', 'r-1': 'd-cpu', 'r-2': 'a-gpu', 'r-3': 'b-tpu' });
    const tpu = run(nodes, [replica('t', { CPU: 1, TPU: 1 })]);
    assert.deepEqual(nodesOf(tpu.placements), { t: 'b-tpu' });
  });

  test('max_replicas_per_node is never exceeded, running replicas included', () => {
    const nodes = [node('a', { CPU: 8 }), node('b', { CPU: 8 }), node('c', { CPU: 8 })];
    const existing = [{ replicaId: 'old', deployment: 'app/Model', nodeId: 'a' }];
    const { placements, pending } = run(nodes, replicas('r', 6, { CPU: 1 }, { maxReplicasPerNode: 2 }), {
      existing,
    });
    assert.deepEqual(nodesOf(placements), { 'r-0': 'b', 'r-1': 'c', 'r-2': 'a', 'r-3': 'b', 'r-4': 'c' });
    assert.deepEqual(
      pending.map((p) => [p.replicaId, p.reason, p.neverFits]),
      [
        [
          'r-5',
          'needs {CPU: 1}; free: a {CPU: 7}, b {CPU: 6}, c {CPU: 6}; max_replicas_per_node 2 reached on a, b, c',
          false,
        ],
      ],
    );
  });
});

describe('GPUs', () => {
  test('GPU replicas land only on GPU nodes, each whole-GPU replica with its own devices', () => {
    const nodes = [
      node('cpu', { CPU: 32 }),
      node('gpu-1', { CPU: 8, GPU: 2 }),
      node('gpu-2', { CPU: 8, GPU: 2 }),
    ];
    const { placements, pending } = run(nodes, replicas('r', 4, { CPU: 1, GPU: 1 }));
    assert.deepEqual(gpusOf(placements), {
      'r-0': 'gpu-1:0',
      'r-1': 'gpu-2:0',
      'r-2': 'gpu-1:1',
      'r-3': 'gpu-2:1',
    });
    assert.deepEqual(
      placements.map((p) => gpuEnvironment(p.gpuIds).CUDA_VISIBLE_DEVICES),
      ['0', '0', '1', '1'],
    );
    assert.equal(
      placements.some((p) => p.gpuFractions !== undefined),
      false,
    );
    assert.deepEqual(pending, []);
  });

  test('two 0.5-GPU replicas share one device and a third goes to the next device', () => {
    const { placements } = run([node('g', { CPU: 8, GPU: 2 })], replicas('r', 3, { CPU: 1, GPU: 0.5 }));
    assert.deepEqual(
      placements.map((p) => [p.replicaId, p.gpuIds, p.gpuFractions]),
      [
        ['r-0', ['0'], { '0': 0.5 }],
        ['r-1', ['0'], { '0': 0.5 }],
        ['r-2', ['1'], { '1': 0.5 }],
      ],
    );
  });

  test('a multi-GPU replica gets that many devices', () => {
    const { placements } = run(
      [node('g', { CPU: 8, GPU: 4 }, { gpuIds: ['4', '5', '6', '7'] })],
      [replica('one', { GPU: 1 }), replica('three', { GPU: 3 })],
    );
    // The larger request is placed first in a pass (see scheduler.ts), so it gets the first devices.
    assert.deepEqual(gpusOf(placements), { one: 'g:7', three: 'g:4,5,6' });
    assert.deepEqual(gpuEnvironment(placements[1].gpuIds), {
      CUDA_VISIBLE_DEVICES: '4,5,6',
      RAYLINE_GPU_IDS: '4,5,6',
    });
  });

  test('release frees the devices, and the next replica gets them', () => {
    const nodes = [node('g', { CPU: 8, GPU: 2 })];
    const first = run(nodes, replicas('r', 2, { GPU: 1 }));
    assert.deepEqual(gpusOf(first.placements), { 'r-0': 'g:0', 'r-1': 'g:1' });
    first.ledger.release('r-0');
    const second = run(nodes, [replica('new', { GPU: 1 })], {
      ledger: first.ledger,
      existing: existingFrom(first.placements.slice(1)),
    });
    assert.deepEqual(gpusOf(second.placements), { new: 'g:0' });
  });
});

describe('resources', () => {
  test('fractional CPUs: four 0.5-CPU replicas on a 2-CPU node, a fifth waits', () => {
    const { placements, pending } = run([node('a', { CPU: 2 })], replicas('r', 5, { CPU: 0.5 }));
    assert.deepEqual(Object.keys(nodesOf(placements)), ['r-0', 'r-1', 'r-2', 'r-3']);
    assert.deepEqual(
      pending.map((p) => [p.replicaId, p.reason]),
      [['r-4', 'needs {CPU: 0.5}; free: a (nothing free)']],
    );
  });

  test('memory is counted in bytes and named in GiB', () => {
    const nodes = [node('a', { CPU: 8, memory: 4 * GiB }), node('b', { CPU: 8, memory: 8 * GiB })];
    const { placements, pending } = run(nodes, replicas('r', 4, { CPU: 1, memory: 3 * GiB }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'b', 'r-1': 'a', 'r-2': 'b' });
    assert.deepEqual(
      pending.map((p) => p.reason),
      ['needs {CPU: 1, memory: 3GiB}; free: a {CPU: 7, memory: 1GiB}, b {CPU: 6, memory: 2GiB}'],
    );
  });

  test('custom resources: only nodes that offer them', () => {
    const nodes = [node('a', { CPU: 8 }), node('b', { CPU: 8, accelerator_x: 2 })];
    const { placements, pending } = run(nodes, replicas('r', 3, { CPU: 1, accelerator_x: 1 }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'b', 'r-1': 'b' });
    assert.deepEqual(
      pending.map((p) => p.reason),
      ['needs {CPU: 1, accelerator_x: 1}; free: a {CPU: 8}, b {CPU: 6}'],
    );
  });

  test('zero-resource replicas place anywhere, spread like the rest', () => {
    const { placements } = run([node('a', { CPU: 1 }), node('b', { CPU: 1 })], replicas('r', 4, {}));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'a', 'r-1': 'b', 'r-2': 'a', 'r-3': 'b' });
  });
});

describe('the pass', () => {
  test('dead and draining nodes get nothing', () => {
    const nodes = [
      node('a', { CPU: 8 }, { alive: false }),
      node('b', { CPU: 8 }, { draining: true }),
      node('c', { CPU: 1 }),
    ];
    const { placements, pending } = run(nodes, replicas('r', 2, { CPU: 1 }));
    assert.deepEqual(nodesOf(placements), { 'r-0': 'c' });
    assert.deepEqual(
      pending.map((p) => p.reason),
      ['needs {CPU: 1}; free: c (nothing free); not schedulable: a (dead), b (draining)'],
    );
  });

  test('asking again for a placed replica returns its placement and takes nothing more', () => {
    const nodes = [node('g', { CPU: 8, GPU: 2 })];
    const first = run(nodes, [replica('r', { CPU: 1, GPU: 1 })]);
    const before = first.ledger.snapshot();
    const again = run(nodes, [replica('r', { CPU: 1, GPU: 1 })], { ledger: first.ledger });
    assert.deepEqual(again.placements, first.placements);
    assert.deepEqual(first.ledger.snapshot(), before);
  });

  test('results come back in request order, placements and pending apart', () => {
    const ledger = new ResourceLedger();
    const { placements, pending } = run(
      [node('g', { CPU: 8, GPU: 1 })],
      [replica('small', { GPU: 0.5 }), replica('big', { GPU: 1 }), replica('cpu', { CPU: 1 })],
      { ledger },
    );
    assert.deepEqual(
      placements.map((p) => p.replicaId),
      ['big', 'cpu'],
    );
    assert.deepEqual(
      pending.map((p) => p.replicaId),
      ['small'],
    );
  });

  test('a request of 1.5 GPUs is pending with an error naming the replica, never placed', () => {
    const { placements, pending, ledger } = run(
      [node('g', { CPU: 8, GPU: 4 })],
      [replica('app/M#1', { GPU: 1.5 })],
    );
    assert.deepEqual(placements, []);
    assert.deepEqual(pending, [
      {
        replicaId: 'app/M#1',
        deployment: 'app/Model',
        reason:
          'replica app/M#1 asks for 1.5 GPUs in its ray_actor_options: above 1, a GPU request must be a whole ' +
          'number of devices (a fraction shares one device and cannot span two)',
        neverFits: true,
        demand: { bundles: [{ GPU: 1.5 }], strategy: 'PACK' },
      },
    ]);
    assert.deepEqual(ledger.available('g'), { CPU: 8, GPU: 4 });
  });
});
