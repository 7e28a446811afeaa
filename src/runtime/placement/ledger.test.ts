/**
 * The ledger: grants per replica down to GPU devices, release, and restore from what nodes report.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deviceIds, ResourceLedger } from './ledger.ts';
import { GiB, node, replicas, run } from './test-support.ts';

function ledgerWith(...nodes: ReturnType<typeof node>[]): ResourceLedger {
  const ledger = new ResourceLedger();
  for (const n of nodes) ledger.setNode(n);
  return ledger;
}

describe('ResourceLedger.allocate', () => {
  test('hands out device ids and counts CPU, memory and custom resources', () => {
    const ledger = ledgerWith(node('a', { CPU: 8, GPU: 2, memory: 16 * GiB, TPU: 4 }));
    const result = ledger.allocate('a', 'r1', { CPU: 2, GPU: 1, memory: 4 * GiB, TPU: 1 });
    assert.deepEqual(result, {
      ok: true,
      grant: { nodeId: 'a', resources: { CPU: 2, GPU: 1, memory: 4 * GiB, TPU: 1 }, gpuIds: ['0'] },
    });
    assert.deepEqual(ledger.available('a'), { CPU: 6, GPU: 1, memory: 12 * GiB, TPU: 3 });
  });

  test('fails without changing anything when the resources are not free', () => {
    const ledger = ledgerWith(node('a', { CPU: 2, memory: 4 * GiB }));
    assert.equal(ledger.allocate('a', 'r1', { CPU: 1, memory: 3 * GiB }).ok, true);
    assert.deepEqual(ledger.allocate('a', 'r2', { CPU: 1, memory: 2 * GiB }), {
      ok: false,
      reason: 'node a has {CPU: 1, memory: 1GiB} free, replica r2 needs {CPU: 1, memory: 2GiB}',
    });
    assert.deepEqual(ledger.available('a'), { CPU: 1, memory: 1 * GiB });
    assert.equal(ledger.grantsOf('r2'), undefined);
  });

  test('rejects 1.5 GPUs with an error naming the replica', () => {
    const ledger = ledgerWith(node('a', { CPU: 8, GPU: 4 }));
    assert.deepEqual(ledger.allocate('a', 'app/Model#x1', { GPU: 1.5 }), {
      ok: false,
      reason:
        'replica app/Model#x1 asks for 1.5 GPUs in its resources: above 1, a GPU request must be a whole number ' +
        'of devices (a fraction shares one device and cannot span two)',
    });
    assert.deepEqual(ledger.available('a'), { CPU: 8, GPU: 4 });
  });

  test('rejects negative amounts and unknown nodes', () => {
    const ledger = ledgerWith(node('a', { CPU: 8 }));
    const negative = ledger.allocate('a', 'r1', { CPU: -1 });
    assert.equal(negative.ok, false);
    assert.match(negative.ok ? '' : negative.reason, /^replica r1 asks for CPU: -1/);
    assert.deepEqual(ledger.allocate('zz', 'r1', { CPU: 1 }), {
      ok: false,
      reason: 'node zz is not known to the ledger',
    });
  });

  test('fractional CPUs: four replicas of 0.5 on a 2-CPU node, not a fifth', () => {
    const ledger = ledgerWith(node('a', { CPU: 2 }));
    for (const id of ['r1', 'r2', 'r3', 'r4']) assert.equal(ledger.allocate('a', id, { CPU: 0.5 }).ok, true);
    assert.equal(ledger.allocate('a', 'r5', { CPU: 0.5 }).ok, false);
    assert.deepEqual(ledger.available('a'), { CPU: 0 });
  });
});

describe('ResourceLedger.release', () => {
  test('frees the devices, which the next replica gets', () => {
    const ledger = ledgerWith(node('a', { CPU: 8, GPU: 2 }));
    ledger.allocate('a', 'r1', { GPU: 1 });
    ledger.allocate('a', 'r2', { GPU: 1 });
    assert.equal(ledger.allocate('a', 'r3', { GPU: 1 }).ok, false);
    assert.equal(ledger.release('r1'), true);
    assert.equal(ledger.release('r1'), false);
    assert.deepEqual(ledger.gpuFree('a'), { '0': 1, '1': 0 });
    const again = ledger.allocate('a', 'r3', { GPU: 1 });
    assert.deepEqual(again.ok && again.grant.gpuIds, ['0']);
  });

  test('releasing every fractional grant leaves the node exactly empty', () => {
    const ledger = ledgerWith(node('a', { CPU: 1, GPU: 1 }));
    const ids = ['r1', 'r2', 'r3'];
    [0.1, 0.2, 0.7].forEach((share, i) => {
      assert.equal(ledger.allocate('a', ids[i], { CPU: share, GPU: share }).ok, true);
    });
    for (const id of ids) ledger.release(id);
    assert.deepEqual(ledger.snapshot(), { nodes: { a: { used: {}, gpus: {} } }, replicas: {} });
    assert.deepEqual(ledger.available('a'), { CPU: 1, GPU: 1 });
  });

  test('replicasOn names the replicas to reschedule when a node dies', () => {
    const ledger = ledgerWith(node('a', { CPU: 4 }), node('b', { CPU: 4 }));
    ledger.allocate('a', 'r1', { CPU: 1 });
    ledger.allocate('b', 'r2', { CPU: 1 });
    ledger.allocate('a', 'r3', { CPU: 1 });
    assert.deepEqual(ledger.replicasOn('a'), ['r1', 'r3']);
    ledger.release('r1');
    assert.deepEqual(ledger.replicasOn('a'), ['r3']);
  });
});

describe('ResourceLedger.restore', () => {
  test('rebuilds exactly the allocation the placements came from, devices included', () => {
    const nodes = [node('a', { CPU: 8, GPU: 4 }), node('b', { CPU: 8, GPU: 3 })];
    const first = run(nodes, [
      ...replicas('whole', 3, { CPU: 1, GPU: 1 }),
      ...replicas('half', 3, { CPU: 1, GPU: 0.5 }),
      {
        replicaId: 'tp',
        deployment: 'app/TP',
        resources: { CPU: 1 },
        bundles: [{ CPU: 1, GPU: 1 }, { GPU: 1 }],
        strategy: 'STRICT_PACK',
      },
    ]);
    assert.equal(first.pending.length, 0);

    const restarted = new ResourceLedger();
    assert.deepEqual(restarted.restore(first.placements), []);
    for (const n of nodes) restarted.setNode(n);
    assert.deepEqual(restarted.snapshot(), first.ledger.snapshot());
    assert.deepEqual(restarted.available('a'), first.ledger.available('a'));
    assert.deepEqual(restarted.gpuFree('b'), first.ledger.gpuFree('b'));
  });

  test('reports replicas that overcommit a device or a resource, and still records them', () => {
    const ledger = ledgerWith(node('a', { CPU: 1, GPU: 1 }));
    const grant = (gpuIds: string[]) => [{ nodeId: 'a', resources: { CPU: 1, GPU: 1 }, gpuIds }];
    const conflicts = ledger.restore([
      { replicaId: 'r1', deployment: 'd', nodeId: 'a', gpuIds: ['0'], grants: grant(['0']) },
      { replicaId: 'r2', deployment: 'd', nodeId: 'a', gpuIds: ['0'], grants: grant(['0']) },
    ]);
    assert.deepEqual(conflicts, [{ replicaId: 'r2', reason: 'node a is overcommitted: CPU, GPU device 0' }]);
    assert.deepEqual(ledger.available('a'), { CPU: -1, GPU: -1 });
  });

  test('a replica reported twice is counted once', () => {
    const ledger = ledgerWith(node('a', { CPU: 4 }));
    const placement = {
      replicaId: 'r1',
      deployment: 'd',
      nodeId: 'a',
      gpuIds: [],
      grants: [{ nodeId: 'a', resources: { CPU: 2 }, gpuIds: [] }],
    };
    ledger.restore([placement]);
    ledger.restore([placement]);
    assert.deepEqual(ledger.available('a'), { CPU: 2 });
  });
});

describe('ResourceLedger.setNode', () => {
  test('a node that grows keeps what runs on it', () => {
    const ledger = ledgerWith(node('a', { CPU: 2, GPU: 1 }));
    ledger.allocate('a', 'r1', { CPU: 2, GPU: 1 });
    ledger.setNode(node('a', { CPU: 4, GPU: 2 }));
    assert.deepEqual(ledger.available('a'), { CPU: 2, GPU: 1 });
    assert.deepEqual(ledger.gpuFree('a'), { '0': 0, '1': 1 });
  });

  test('device ids: listed ids win, total.GPU alone numbers them, the smaller count wins', () => {
    assert.deepEqual(deviceIds({ total: { GPU: 2 }, gpuIds: [] }), ['0', '1']);
    assert.deepEqual(deviceIds({ total: {}, gpuIds: ['3', '5'] }), ['3', '5']);
    assert.deepEqual(deviceIds({ total: { GPU: 1 }, gpuIds: ['3', '5'] }), ['3']);
    assert.deepEqual(deviceIds({ total: { GPU: 4 }, gpuIds: ['3', '5'] }), ['3', '5']);
  });
});
