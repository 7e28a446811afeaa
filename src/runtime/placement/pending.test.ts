/**
 * The words a pending replica carries into status: what it needs, the free capacity that came
 * closest, and what else stood in its way.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ResourceLedger } from './ledger.ts';
import { node, replica, replicas, run } from './test-support.ts';

const reasons = (result: { pending: { reason: string }[] }) => result.pending.map((p) => p.reason);

describe('pending reasons', () => {
  test('names what it needs and what each node has free', () => {
    const nodes = [node('node-a', { CPU: 2 }), node('node-b', { CPU: 2, GPU: 1 })];
    const ledger = new ResourceLedger();
    ledger.setNode(nodes[1]);
    ledger.allocate('node-b', 'other', { CPU: 1, GPU: 0.5 });
    const result = run(nodes, [replica('r', { GPU: 1 })], { ledger });
    assert.deepEqual(result.pending, [
      {
        replicaId: 'r',
        deployment: 'app/Model',
        reason: 'needs {GPU: 1}; free: node-a {CPU: 2}, node-b {CPU: 1, GPU: 0.5}',
        neverFits: false,
        demand: { bundles: [{ GPU: 1 }], strategy: 'PACK' },
      },
    ]);
  });

  test('a request bigger than any node says it can never fit, naming the largest node', () => {
    const nodes = [node('a', { CPU: 4, GPU: 2 }), node('b', { CPU: 64 })];
    const result = run(nodes, [replica('r', { CPU: 1, GPU: 8 })]);
    assert.deepEqual(
      result.pending.map((p) => [p.reason, p.neverFits]),
      [
        [
          'needs {CPU: 1, GPU: 8}, more than any schedulable node has in total (largest: a {CPU: 4, GPU: 2}); ' +
            'it can never fit on the current nodes',
          true,
        ],
      ],
    );
  });

  test('GPUs free only in parts of devices are called out', () => {
    const nodes = [node('g', { CPU: 8, GPU: 2 })];
    const ledger = new ResourceLedger();
    const half = (id: string, device: string) => ({
      replicaId: id,
      deployment: 'd',
      nodeId: 'g',
      gpuIds: [device],
      gpuFractions: { [device]: 0.5 },
      grants: [{ nodeId: 'g', resources: { GPU: 0.5 }, gpuIds: [device], gpuFractions: { [device]: 0.5 } }],
    });
    ledger.restore([half('x', '0'), half('y', '1')]);
    assert.deepEqual(reasons(run(nodes, [replica('r', { GPU: 1 })], { ledger })), [
      'needs {GPU: 1}; free: g {CPU: 8, GPU: 1}; GPU on g is free only in parts of devices (0: 0.5, 1: 0.5)',
    ]);
  });

  test('with many nodes, lists the five closest in id order and counts the rest', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => node(`n${i}`, { CPU: i }));
    const result = run(nodes, [replica('r', { CPU: 100 })]);
    assert.equal(result.pending[0].neverFits, true);
    const ledger = new ResourceLedger();
    for (const n of nodes) ledger.setNode(n);
    for (const n of nodes)
      if (n.total.CPU > 0) ledger.allocate(n.id, `fill-${n.id}`, { CPU: n.total.CPU - 0.5 });
    assert.deepEqual(reasons(run(nodes, [replica('r', { CPU: 1 })], { ledger })), [
      'needs {CPU: 1}; free: n1 {CPU: 0.5}, n2 {CPU: 0.5}, n3 {CPU: 0.5}, n4 {CPU: 0.5}, n5 {CPU: 0.5} and 3 more nodes',
    ]);
  });

  test('no schedulable node at all', () => {
    const nodes = [node('a', { CPU: 4 }, { draining: true })];
    assert.deepEqual(
      run(nodes, replicas('r', 1, { CPU: 1 })).pending.map((p) => [p.reason, p.neverFits]),
      [['needs {CPU: 1}; no node is schedulable; not schedulable: a (draining)', false]],
    );
    assert.deepEqual(reasons(run([], replicas('r', 1, { CPU: 1 }))), [
      'needs {CPU: 1}; no node is schedulable',
    ]);
  });
});
