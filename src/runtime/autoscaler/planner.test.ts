/**
 * The cluster autoscaler's planner on worked examples: which groups grow for which demand, how
 * strategies and limits bound that, and which idle workers go.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type PlanInput, planScaling } from './planner.ts';
import type { ClusterShape, NodeLoad, ResourceDemand, ResourceSet, WorkerGroupShape } from './types.ts';

const GiB = 2 ** 30;

const cpuGroup: WorkerGroupShape = {
  name: 'cpu',
  resourcesPerWorker: { CPU: 8, memory: 32 * GiB },
  minWorkers: 0,
  maxWorkers: 10,
};
const gpuGroup: WorkerGroupShape = {
  name: 'gpu',
  resourcesPerWorker: { CPU: 8, GPU: 1, memory: 32 * GiB },
  minWorkers: 0,
  maxWorkers: 10,
};
const gpu4Group: WorkerGroupShape = {
  name: 'gpu4',
  resourcesPerWorker: { CPU: 32, GPU: 4, memory: 128 * GiB },
  minWorkers: 0,
  maxWorkers: 2,
};

function shape(groups: WorkerGroupShape[], extra: Partial<ClusterShape> = {}): ClusterShape {
  return { groups, idleTimeoutS: 60, upscalingMode: 'Default', ...extra };
}

/** The head, full: demand never fits there, so the examples are about workers. */
const head: NodeLoad = {
  id: 'head',
  group: undefined,
  total: { CPU: 4, memory: 16 * GiB },
  available: { CPU: 0, memory: 0 },
  idleForS: 0,
};

function node(id: string, group: WorkerGroupShape, available: ResourceSet, idleForS = 0): NodeLoad {
  return { id, group: group.name, total: group.resourcesPerWorker, available, idleForS };
}

/** A node of the group with nothing placed on it. */
function idleNode(id: string, group: WorkerGroupShape, idleForS: number): NodeLoad {
  return node(id, group, { ...group.resourcesPerWorker }, idleForS);
}

function replica(resources: ResourceSet): ResourceDemand {
  return { bundles: [resources], strategy: 'PACK' };
}

function plan(input: Partial<PlanInput> & { shape: ClusterShape }) {
  return planScaling({ nodes: [head], pendingWorkers: [], demand: [], ...input });
}

/** name → [targetWorkers, remove] for compact exact assertions. */
function targets(result: ReturnType<typeof planScaling>): Record<string, [number, string[]]> {
  return Object.fromEntries(result.groups.map((g) => [g.name, [g.targetWorkers, g.remove]]));
}

describe('choosing a group', () => {
  test('GPU demand starts a GPU worker, not a CPU one', () => {
    const result = plan({
      shape: shape([cpuGroup, gpuGroup, gpu4Group]),
      demand: [replica({ CPU: 1, GPU: 1 })],
    });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [1, []], gpu4: [0, []] });
    assert.deepEqual(result.unsatisfiable, []);
  });

  test('CPU-only demand takes a CPU worker even when a GPU worker would be smaller', () => {
    const smallGpu: WorkerGroupShape = {
      ...gpuGroup,
      resourcesPerWorker: { CPU: 2, GPU: 1, memory: 8 * GiB },
    };
    const result = plan({ shape: shape([smallGpu, cpuGroup]), demand: [replica({ CPU: 2 })] });
    assert.deepEqual(targets(result), { gpu: [0, []], cpu: [1, []] });
  });

  test('CPU-only demand takes a GPU worker when no other group can hold it', () => {
    const result = plan({ shape: shape([cpuGroup, gpu4Group]), demand: [replica({ CPU: 16 })] });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu4: [1, []] });
  });

  test('the smallest group that fits wins among groups without special resources', () => {
    const big: WorkerGroupShape = {
      ...cpuGroup,
      name: 'big',
      resourcesPerWorker: { CPU: 64, memory: 256 * GiB },
    };
    const result = plan({ shape: shape([big, cpuGroup]), demand: [replica({ CPU: 4, memory: 8 * GiB })] });
    assert.deepEqual(targets(result), { big: [0, []], cpu: [1, []] });
  });

  test('3 replicas of 0.5 GPU need 2 one-GPU workers', () => {
    const half = () => replica({ CPU: 1, GPU: 0.5 });
    const result = plan({ shape: shape([cpuGroup, gpuGroup, gpu4Group]), demand: [half(), half(), half()] });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [2, []], gpu4: [0, []] });
  });

  test('bundles reuse the spare capacity of workers added in the same plan (first-fit decreasing)', () => {
    // 6 + 2 CPUs share one 8-CPU worker and 4 + 4 the next, whatever the order they came in.
    const demand = [2, 4, 6, 4].map((CPU) => replica({ CPU }));
    const result = plan({ shape: shape([cpuGroup]), demand });
    assert.deepEqual(targets(result), { cpu: [2, []] });
  });
});

describe('placement strategies', () => {
  const fourGpuBundle: ResourceDemand = {
    bundles: [1, 2, 3, 4].map(() => ({ CPU: 1, GPU: 1 })),
    strategy: 'STRICT_PACK',
  };

  test('a STRICT_PACK 4-GPU placement group needs a 4-GPU worker', () => {
    const result = plan({ shape: shape([cpuGroup, gpuGroup, gpu4Group]), demand: [fourGpuBundle] });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [0, []], gpu4: [1, []] });
    assert.deepEqual(result.unsatisfiable, []);
  });

  test('the same bundles with PACK may use four 1-GPU workers', () => {
    const result = plan({
      shape: shape([cpuGroup, gpuGroup]),
      demand: [{ ...fourGpuBundle, strategy: 'PACK' }],
    });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [4, []] });
  });

  test('STRICT_PACK is unsatisfiable when the 4-GPU group is at max', () => {
    const busy = (id: string) => node(id, gpu4Group, { CPU: 30, GPU: 0, memory: 100 * GiB });
    const result = plan({
      shape: shape([cpuGroup, gpuGroup, gpu4Group]),
      nodes: [head, busy('g4-a'), busy('g4-b')],
      demand: [fourGpuBundle],
    });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [0, []], gpu4: [2, []] });
    assert.deepEqual(result.unsatisfiable, [
      {
        demand: fourGpuBundle,
        reason: '{CPU: 4, GPU: 4} fits only worker groups already at maxWorkers: gpu4 (2)',
      },
    ]);
  });

  test('STRICT_PACK is unsatisfiable, naming the resources, when no group has 4 GPUs', () => {
    const result = plan({ shape: shape([cpuGroup, gpuGroup]), demand: [fourGpuBundle] });
    assert.deepEqual(targets(result), { cpu: [0, []], gpu: [0, []] });
    assert.deepEqual(result.unsatisfiable, [
      {
        demand: fourGpuBundle,
        reason:
          "{CPU: 4, GPU: 4} (STRICT_PACK: all bundles on one worker) fits no worker group's worker: " +
          'cpu {CPU: 8, memory: 32GiB}, gpu {CPU: 8, GPU: 1, memory: 32GiB}',
      },
    ]);
  });

  test('STRICT_SPREAD puts each bundle on a distinct worker, counting free existing ones', () => {
    const spread: ResourceDemand = {
      bundles: [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }],
      strategy: 'STRICT_SPREAD',
    };
    const nodes = [head, node('cpu-a', cpuGroup, { CPU: 8, memory: 32 * GiB })];
    assert.deepEqual(targets(plan({ shape: shape([cpuGroup]), nodes, demand: [spread] })), {
      cpu: [3, []],
    });
    // The same bundles packed all fit the one free node.
    assert.deepEqual(
      targets(plan({ shape: shape([cpuGroup]), nodes, demand: [{ ...spread, strategy: 'PACK' }] })),
      {
        cpu: [1, []],
      },
    );
  });

  test('STRICT_SPREAD beyond max is unsatisfiable as a whole and adds nothing for it', () => {
    const spread: ResourceDemand = {
      bundles: [{ GPU: 1 }, { GPU: 1 }, { GPU: 1 }],
      strategy: 'STRICT_SPREAD',
    };
    const result = plan({ shape: shape([{ ...gpuGroup, maxWorkers: 2 }]), demand: [spread] });
    assert.deepEqual(targets(result), { gpu: [0, []] });
    assert.deepEqual(result.unsatisfiable, [
      { demand: spread, reason: '{GPU: 1} fits only worker groups already at maxWorkers: gpu (2)' },
    ]);
  });
});

describe('limits', () => {
  test('max is respected: overflow goes to the next group that fits, then is unsatisfiable', () => {
    const demand = [1, 2, 3, 4, 5, 6].map(() => replica({ CPU: 1, GPU: 1 }));
    const result = plan({
      shape: shape([
        { ...gpuGroup, maxWorkers: 3 },
        { ...gpu4Group, maxWorkers: 0 },
      ]),
      demand,
    });
    assert.deepEqual(targets(result), { gpu: [3, []], gpu4: [0, []] });
    assert.equal(result.unsatisfiable.length, 3);
    assert.deepEqual(
      result.unsatisfiable.map((u) => u.reason),
      Array(3).fill('{CPU: 1, GPU: 1} fits only worker groups already at maxWorkers: gpu (3), gpu4 (0)'),
    );

    const spill = plan({ shape: shape([{ ...gpuGroup, maxWorkers: 3 }, gpu4Group]), demand });
    assert.deepEqual(targets(spill), { gpu: [3, []], gpu4: [1, []] });
    assert.deepEqual(spill.unsatisfiable, []);
  });

  test('max counts workers that exist and workers still starting', () => {
    const result = plan({
      shape: shape([{ ...gpuGroup, maxWorkers: 2 }]),
      nodes: [head, node('gpu-a', gpuGroup, { CPU: 7, GPU: 0, memory: 30 * GiB })],
      pendingWorkers: [{ id: 'gpu-b', group: 'gpu', state: 'pending' }],
      demand: [replica({ GPU: 1 }), replica({ GPU: 1 })],
    });
    assert.deepEqual(targets(result), { gpu: [2, []] });
    assert.equal(result.unsatisfiable.length, 1);
  });

  test('min is enforced without any demand, and demand uses those workers first', () => {
    const result = plan({
      shape: shape([{ ...cpuGroup, minWorkers: 2 }, gpuGroup]),
      demand: [replica({ CPU: 4 }), replica({ CPU: 4 })],
    });
    assert.deepEqual(targets(result), { cpu: [2, []], gpu: [0, []] });
  });

  test('min counts workers still starting', () => {
    const result = plan({
      shape: shape([{ ...cpuGroup, minWorkers: 2 }]),
      pendingWorkers: [{ id: 'cpu-a', group: 'cpu', state: 'pending' }],
    });
    assert.deepEqual(targets(result), { cpu: [2, []] });
  });

  test('Conservative adds at most max(1, running workers) per plan and defers the rest', () => {
    const demand = [1, 2, 3, 4, 5].map(() => replica({ GPU: 1 }));
    const conservative = shape([cpuGroup, gpuGroup], { upscalingMode: 'Conservative' });

    const fromNothing = plan({ shape: conservative, demand });
    assert.deepEqual(targets(fromNothing), { cpu: [0, []], gpu: [1, []] });
    assert.equal(fromNothing.deferred.length, 4);
    assert.deepEqual(fromNothing.unsatisfiable, []);

    const busyCpu = (id: string) => node(id, cpuGroup, { CPU: 0, memory: 0 });
    const withThree = plan({
      shape: conservative,
      nodes: [head, busyCpu('c1'), busyCpu('c2'), busyCpu('c3')],
      demand,
    });
    assert.deepEqual(targets(withThree), { cpu: [3, []], gpu: [3, []] });
    assert.equal(withThree.deferred.length, 2);

    for (const upscalingMode of ['Default', 'Aggressive'] as const) {
      const all = plan({ shape: shape([cpuGroup, gpuGroup], { upscalingMode }), demand });
      assert.deepEqual(targets(all), { cpu: [0, []], gpu: [5, []] });
      assert.deepEqual(all.deferred, []);
    }
  });

  test('Conservative does not limit scaling up to min', () => {
    const result = plan({
      shape: shape([{ ...cpuGroup, minWorkers: 3 }], { upscalingMode: 'Conservative' }),
    });
    assert.deepEqual(targets(result), { cpu: [3, []] });
  });
});

describe('existing capacity', () => {
  test('demand that fits free capacity of existing nodes adds nothing', () => {
    const result = plan({
      shape: shape([cpuGroup, gpuGroup]),
      nodes: [
        head,
        node('gpu-a', gpuGroup, { CPU: 4, GPU: 1, memory: 16 * GiB }),
        node('cpu-a', cpuGroup, { CPU: 3, memory: 16 * GiB }),
      ],
      demand: [replica({ CPU: 1, GPU: 1 }), replica({ CPU: 2 }), replica({ CPU: 1 })],
    });
    assert.deepEqual(targets(result), { cpu: [1, []], gpu: [1, []] });
    assert.deepEqual(result.unsatisfiable, []);
  });

  test("pending workers' capacity counts: demand waits for them instead of adding more", () => {
    const result = plan({
      shape: shape([gpuGroup]),
      pendingWorkers: [
        { id: 'gpu-a', group: 'gpu', state: 'pending' },
        { id: 'gpu-b', group: 'gpu', state: 'terminating' },
      ],
      demand: [replica({ CPU: 1, GPU: 0.5 }), replica({ CPU: 1, GPU: 0.5 }), replica({ CPU: 1, GPU: 1 })],
    });
    // The pending worker holds the two halves; the terminating one counts for nothing.
    assert.deepEqual(targets(result), { gpu: [2, []] });
  });

  test('a worker in both the node list and the pending list counts once', () => {
    const result = plan({
      shape: shape([cpuGroup]),
      nodes: [head, node('cpu-a', cpuGroup, { CPU: 0, memory: 0 })],
      pendingWorkers: [{ id: 'cpu-a', group: 'cpu', state: 'running' }],
    });
    assert.deepEqual(targets(result), { cpu: [1, []] });
  });
});

describe('scale down', () => {
  test('workers idle for their group timeout go; the per-group timeout overrides the cluster one', () => {
    const slowGpu = { ...gpuGroup, idleTimeoutS: 300 };
    const result = plan({
      shape: shape([cpuGroup, slowGpu]),
      nodes: [
        { ...head, idleForS: 10_000 },
        idleNode('cpu-a', cpuGroup, 61),
        idleNode('cpu-b', cpuGroup, 59),
        node('cpu-c', cpuGroup, { CPU: 4, memory: 16 * GiB }, 0),
        idleNode('gpu-a', slowGpu, 299),
        idleNode('gpu-b', slowGpu, 300),
      ],
    });
    assert.deepEqual(targets(result), { cpu: [2, ['cpu-a']], gpu: [1, ['gpu-b']] });
  });

  test('never below min: the longest idle go first', () => {
    const result = plan({
      shape: shape([{ ...cpuGroup, minWorkers: 1 }]),
      nodes: [
        head,
        idleNode('cpu-a', cpuGroup, 100),
        idleNode('cpu-b', cpuGroup, 500),
        idleNode('cpu-c', cpuGroup, 200),
      ],
    });
    assert.deepEqual(targets(result), { cpu: [1, ['cpu-b', 'cpu-c']] });
  });

  test('min counts workers still starting', () => {
    const result = plan({
      shape: shape([{ ...cpuGroup, minWorkers: 1 }]),
      nodes: [head, idleNode('cpu-a', cpuGroup, 100)],
      pendingWorkers: [{ id: 'cpu-b', group: 'cpu', state: 'pending' }],
    });
    assert.deepEqual(targets(result), { cpu: [1, ['cpu-a']] });
  });

  test('a worker demand was just placed on stays, and idle workers are filled last', () => {
    const result = plan({
      shape: shape([cpuGroup]),
      nodes: [
        head,
        idleNode('cpu-a', cpuGroup, 120),
        idleNode('cpu-b', cpuGroup, 90),
        node('cpu-c', cpuGroup, { CPU: 1, memory: 4 * GiB }),
      ],
      // The first fits the busy node; the second only an idle one, the least idle.
      demand: [replica({ CPU: 1 }), replica({ CPU: 6 })],
    });
    assert.deepEqual(targets(result), { cpu: [2, ['cpu-a']] });
  });

  test('a zero timeout removes idle workers at once but never a busy one', () => {
    const result = plan({
      shape: shape([cpuGroup], { idleTimeoutS: 0 }),
      nodes: [
        head,
        idleNode('cpu-a', cpuGroup, 0.5),
        node('cpu-b', cpuGroup, { CPU: 8, memory: 32 * GiB }, 0),
      ],
    });
    assert.deepEqual(targets(result), { cpu: [1, ['cpu-a']] });
  });

  test('groups unknown to the shape are left alone; their nodes still hold demand', () => {
    const other: WorkerGroupShape = { ...cpuGroup, name: 'removed-group' };
    const result = plan({
      shape: shape([gpuGroup]),
      nodes: [head, idleNode('old-a', other, 1_000)],
      demand: [replica({ CPU: 2 })],
    });
    assert.deepEqual(targets(result), { gpu: [0, []] });
    assert.deepEqual(result.unsatisfiable, []);
  });
});
