/**
 * Placement-group bundles by strategy: where each bundle lands, which devices the replica's process
 * gets, and that a replica that cannot be placed whole leaves the ledger untouched.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ResourceLedger } from './ledger.ts';
import { node, replica, run } from './test-support.ts';
import type { PlacementStrategy, ResourceSet } from './types.ts';

function group(id: string, bundles: ResourceSet[], strategy: PlacementStrategy, resources: ResourceSet = {}) {
  return replica(id, resources, { bundles, strategy });
}

const oneGpu = { CPU: 1, GPU: 1 };

describe('STRICT_PACK', () => {
  test('a 2-GPU replica lands on the node with two free GPUs and gets both devices', () => {
    const nodes = [
      node('a', { CPU: 8, GPU: 1 }),
      node('b', { CPU: 8, GPU: 2 }),
      node('c', { CPU: 8, GPU: 4 }),
    ];
    const ledger = new ResourceLedger();
    ledger.setNode(nodes[2]);
    ledger.allocate('c', 'busy', { GPU: 3 });
    const { placements, pending } = run(nodes, [group('tp', [oneGpu, oneGpu], 'STRICT_PACK', { CPU: 1 })], {
      ledger,
    });
    assert.deepEqual(pending, []);
    assert.equal(placements.length, 1);
    const [tp] = placements;
    assert.deepEqual(
      [tp.nodeId, tp.bundleNodes, tp.gpuIds, tp.gpuFractions],
      ['b', ['b', 'b'], ['0', '1'], undefined],
    );
    assert.deepEqual(ledger.available('b'), { CPU: 6, GPU: 0 });
  });

  test('a 4-GPU tensor-parallel replica lists all four devices', () => {
    const nodes = [node('small', { CPU: 16, GPU: 2 }), node('big', { CPU: 16, GPU: 4 })];
    const bundles = [oneGpu, oneGpu, oneGpu, oneGpu];
    const { placements } = run(nodes, [group('tp4', bundles, 'STRICT_PACK', { CPU: 1, GPU: 1 })]);
    assert.deepEqual(
      placements.map((p) => [p.nodeId, p.gpuIds]),
      [['big', ['0', '1', '2', '3']]],
    );
  });

  test('pending while no node has two GPUs free, saying so; never-fits when none has two at all', () => {
    const nodes = [node('a', { CPU: 8, GPU: 2 }), node('b', { CPU: 8, GPU: 1 })];
    const ledger = new ResourceLedger();
    for (const n of nodes) ledger.setNode(n);
    ledger.allocate('a', 'busy', { CPU: 1, GPU: 1 });
    const before = ledger.snapshot();
    const busy = run(nodes, [group('tp', [oneGpu, oneGpu], 'STRICT_PACK')], { ledger });
    assert.deepEqual(busy.placements, []);
    assert.deepEqual(
      busy.pending.map((p) => [p.reason, p.neverFits, p.demand]),
      [
        [
          'needs bundles [{CPU: 1, GPU: 1}, {CPU: 1, GPU: 1}] with STRICT_PACK (all on one node); ' +
            'free: a {CPU: 7, GPU: 1}, b {CPU: 8, GPU: 1}',
          false,
          { bundles: [oneGpu, oneGpu], strategy: 'STRICT_PACK' },
        ],
      ],
    );
    assert.deepEqual(ledger.snapshot(), before);

    const never = run([nodes[1]], [group('tp', [oneGpu, oneGpu], 'STRICT_PACK')]);
    assert.deepEqual(
      never.pending.map((p) => [p.reason, p.neverFits]),
      [
        [
          'needs bundles [{CPU: 1, GPU: 1}, {CPU: 1, GPU: 1}] with STRICT_PACK (all on one node), more than any ' +
            'schedulable node has in total (largest: b {CPU: 8, GPU: 1}); it can never fit on the current nodes',
          true,
        ],
      ],
    );
  });

  test('is placed before single-GPU replicas of the same pass, so they do not split its node', () => {
    const nodes = [node('a', { CPU: 8, GPU: 2 }), node('b', { CPU: 8, GPU: 2 })];
    const requests = [
      replica('s1', oneGpu),
      replica('s2', oneGpu),
      group('tp', [oneGpu, oneGpu], 'STRICT_PACK'),
    ];
    const { placements, pending } = run(nodes, requests);
    assert.deepEqual(pending, []);
    assert.deepEqual(
      placements.map((p) => `${p.replicaId}@${p.nodeId}:${p.gpuIds.join(',')}`),
      ['s1@b:0', 's2@b:1', 'tp@a:0,1'],
    );
  });

  test('fractional bundles may share a device: the replica sees it once, with its summed share', () => {
    const { placements } = run(
      [node('g', { CPU: 4, GPU: 1 })],
      [group('r', [{ GPU: 0.25 }, { GPU: 0.25 }], 'STRICT_PACK')],
    );
    assert.deepEqual([placements[0].gpuIds, placements[0].gpuFractions], [['0'], { '0': 0.5 }]);
  });
});

describe('PACK', () => {
  test('prefers one node', () => {
    const nodes = [node('a', { CPU: 4 }), node('b', { CPU: 4 })];
    const { placements } = run(nodes, [group('r', [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], 'PACK')]);
    assert.deepEqual(placements[0].bundleNodes, ['a', 'a', 'a']);
  });

  test('falls back to several nodes, filling the ones it uses first', () => {
    const nodes = [node('a', { CPU: 3 }), node('b', { CPU: 2 }), node('c', { CPU: 2 })];
    const { placements } = run(nodes, [group('r', [{ CPU: 2 }, { CPU: 1 }, { CPU: 2 }], 'PACK')]);
    assert.deepEqual(placements[0].bundleNodes, ['a', 'a', 'b']);
    assert.equal(placements[0].nodeId, 'a');
  });
});

describe('SPREAD', () => {
  test('prefers distinct nodes', () => {
    const nodes = [node('a', { CPU: 4 }), node('b', { CPU: 4 }), node('c', { CPU: 4 })];
    const { placements } = run(nodes, [group('r', [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], 'SPREAD')]);
    assert.deepEqual(placements[0].bundleNodes, ['a', 'b', 'c']);
  });

  test('falls back to nodes already used', () => {
    const { placements } = run(
      [node('a', { CPU: 4 }), node('b', { CPU: 4 })],
      [group('r', [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], 'SPREAD')],
    );
    assert.deepEqual(placements[0].bundleNodes, ['a', 'b', 'a']);
  });
});

describe('STRICT_SPREAD', () => {
  test('each bundle on a distinct node; the replica sees only its own node devices', () => {
    const nodes = [
      node('a', { CPU: 4, GPU: 1 }),
      node('b', { CPU: 4, GPU: 1 }),
      node('c', { CPU: 4, GPU: 1 }),
    ];
    const { placements } = run(nodes, [group('r', [oneGpu, oneGpu, oneGpu], 'STRICT_SPREAD', { CPU: 1 })]);
    const [p] = placements;
    assert.deepEqual([p.nodeId, p.bundleNodes, p.gpuIds], ['a', ['a', 'b', 'c'], ['0']]);
    assert.deepEqual(
      p.grants.map((g) => `${g.nodeId}:${g.gpuIds.join(',')}`),
      ['a:0', 'b:0', 'c:0'],
    );
  });

  test('backtracks when the first choice for bundle 0 was the only node bundle 1 fits', () => {
    const nodes = [node('a', { CPU: 4 }), node('b', { CPU: 2 })];
    const { placements } = run(nodes, [group('r', [{ CPU: 1 }, { CPU: 3 }], 'STRICT_SPREAD')]);
    assert.deepEqual(placements[0].bundleNodes, ['b', 'a']);
  });

  test('pending, with the ledger untouched, when there are fewer nodes than bundles', () => {
    const nodes = [node('a', { CPU: 4 }), node('b', { CPU: 4 })];
    const { placements, pending, ledger } = run(nodes, [
      group('r', [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], 'STRICT_SPREAD'),
    ]);
    assert.deepEqual(placements, []);
    assert.deepEqual(
      pending.map((p) => [p.reason, p.neverFits]),
      [
        [
          'needs bundles [{CPU: 1}, {CPU: 1}, {CPU: 1}] with STRICT_SPREAD (each on a different node), 3 bundles ' +
            'on distinct nodes and only 2 schedulable; it can never fit on the current nodes',
          true,
        ],
      ],
    );
    assert.deepEqual(ledger.snapshot().replicas, {});
    assert.deepEqual(ledger.available('a'), { CPU: 4 });
  });

  test('max_replicas_per_node applies to the node of bundle 0 only', () => {
    const nodes = [node('a', { CPU: 4 }), node('b', { CPU: 4 })];
    const existing = [{ replicaId: 'old', deployment: 'app/Model', nodeId: 'a' }];
    const request = replica(
      'r',
      {},
      { bundles: [{ CPU: 1 }, { CPU: 1 }], strategy: 'STRICT_SPREAD', maxReplicasPerNode: 1 },
    );
    const { placements } = run(nodes, [request], { existing });
    assert.deepEqual(placements[0].bundleNodes, ['b', 'a']);
  });
});

describe('bundle requests', () => {
  test('ray_actor_options must fit in the first bundle, where the replica runs', () => {
    const { pending } = run(
      [node('a', { CPU: 8 })],
      [group('r', [{ CPU: 1 }, { CPU: 4 }], 'PACK', { CPU: 2 })],
    );
    assert.deepEqual(
      pending.map((p) => [p.reason, p.neverFits]),
      [
        [
          'replica r asks for {CPU: 2} in ray_actor_options, more than its first placement group bundle {CPU: 1}: ' +
            'the replica runs inside that bundle',
          true,
        ],
      ],
    );
  });

  test('PACK and SPREAD that fail halfway give back the bundles they had placed', () => {
    const nodes = [node('a', { CPU: 2 }), node('b', { CPU: 1 })];
    for (const strategy of ['PACK', 'SPREAD'] as const) {
      const { placements, pending, ledger } = run(nodes, [group('r', [{ CPU: 2 }, { CPU: 2 }], strategy)]);
      assert.deepEqual([placements, pending.length], [[], 1]);
      assert.deepEqual(ledger.snapshot().replicas, {});
      assert.deepEqual([ledger.available('a'), ledger.available('b')], [{ CPU: 2 }, { CPU: 1 }]);
    }
  });

  test('only the bundles are reserved, not the actor resources on top', () => {
    const { ledger } = run(
      [node('a', { CPU: 8, GPU: 2 })],
      [group('r', [oneGpu, oneGpu], 'PACK', { CPU: 1, GPU: 1 })],
    );
    assert.deepEqual(ledger.available('a'), { CPU: 6, GPU: 0 });
  });
});
