/**
 * The cluster autoscaler loop over an in-memory provider and cluster view: the decisions it applies
 * round after round, when it applies them, what it logs, and that a failing round stops nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { ClusterAutoscaler, type ClusterAutoscalerOptions } from './cluster-autoscaler.ts';
import type { ScalePlan } from './planner.ts';
import type {
  ClusterShape,
  NodeLoad,
  NodeProvider,
  ProviderWorker,
  ResourceDemand,
  ScaleDecision,
  WorkerGroupShape,
} from './types.ts';

const cpu: WorkerGroupShape = { name: 'cpu', resourcesPerWorker: { CPU: 4 }, minWorkers: 0, maxWorkers: 4 };
const gpu: WorkerGroupShape = {
  name: 'gpu',
  resourcesPerWorker: { CPU: 4, GPU: 1 },
  minWorkers: 0,
  maxWorkers: 2,
};
const head: NodeLoad = {
  id: 'head',
  group: undefined,
  total: { CPU: 2 },
  available: { CPU: 0 },
  idleForS: 0,
};

class MemoryProvider implements NodeProvider {
  clusterShape: ClusterShape;
  list: ProviderWorker[] = [];
  applied: ScaleDecision[] = [];
  reconciles = 0;
  /** Makes the next calls of a method fail. */
  failing: { shape?: number; apply?: number } = {};
  /** When set, shape() waits for it: a round in progress. */
  gate: Promise<void> | undefined;
  shapeCalls = 0;

  constructor(groups: WorkerGroupShape[], extra: Partial<ClusterShape> = {}) {
    this.clusterShape = { groups, idleTimeoutS: 60, upscalingMode: 'Default', ...extra };
  }

  async shape(): Promise<ClusterShape> {
    this.shapeCalls++;
    await this.gate;
    if (this.failing.shape) {
      this.failing.shape--;
      throw new Error('cluster shape unavailable');
    }
    return this.clusterShape;
  }

  async workers(): Promise<ProviderWorker[]> {
    return this.list.map((w) => ({ ...w }));
  }

  async apply(decision: ScaleDecision): Promise<void> {
    if (this.failing.apply) {
      this.failing.apply--;
      throw new Error('apply failed');
    }
    this.applied.push(structuredClone(decision));
  }

  async reconcile(): Promise<void> {
    this.reconciles++;
  }
}

class MemoryView {
  nodeList: NodeLoad[] = [head];
  pending: ResourceDemand[] = [];
  nodes = () => this.nodeList;
  demand = () => this.pending;
}

function logCapture() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const at = (level: 'warn' | 'error' | 'info') => lines.filter((l) => l.level === pino.levels.values[level]);
  return { log, lines, at };
}

function setup(
  groups: WorkerGroupShape[],
  extra: Partial<ClusterShape> = {},
  options: Partial<ClusterAutoscalerOptions> = {},
) {
  const provider = new MemoryProvider(groups, extra);
  const view = new MemoryView();
  const logs = logCapture();
  const plans: ScalePlan[] = [];
  const autoscaler = new ClusterAutoscaler({
    provider,
    view,
    log: logs.log,
    onPlan: (plan) => plans.push(plan),
    ...options,
  });
  return { provider, view, autoscaler, logs, plans };
}

const worker = (id: string, group: WorkerGroupShape, idleForS: number, busy = false): NodeLoad => ({
  id,
  group: group.name,
  total: group.resourcesPerWorker,
  available: busy ? { CPU: 0 } : { ...group.resourcesPerWorker },
  idleForS: busy ? 0 : idleForS,
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('GPU demand raises the GPU group; a starting worker is not asked for twice', async () => {
  const { provider, view, autoscaler } = setup([cpu, gpu]);
  await autoscaler.tick();
  assert.deepEqual(provider.applied, [
    {
      groups: [
        { name: 'cpu', targetWorkers: 0, remove: [] },
        { name: 'gpu', targetWorkers: 0, remove: [] },
      ],
    },
  ]);

  view.pending = [{ bundles: [{ CPU: 1, GPU: 1 }], strategy: 'PACK' }];
  await autoscaler.tick();
  assert.deepEqual(provider.applied.at(-1), {
    groups: [
      { name: 'cpu', targetWorkers: 0, remove: [] },
      { name: 'gpu', targetWorkers: 1, remove: [] },
    ],
  });

  // The provider started it: while it starts, the same demand is placed on it, not on another.
  provider.list = [{ id: 'gpu-1', group: 'gpu', state: 'pending' }];
  await autoscaler.tick();
  // It registered and took the replica: still one, and an unchanged decision is not applied again.
  provider.list = [{ id: 'gpu-1', group: 'gpu', state: 'running' }];
  view.nodeList = [head, worker('gpu-1', gpu, 0, true)];
  view.pending = [];
  await autoscaler.tick();
  assert.equal(provider.applied.length, 2);

  // Two more GPU replicas: the group grows to its max of 2, the rest is unsatisfiable.
  view.pending = [0, 1].map(() => ({ bundles: [{ GPU: 1 }], strategy: 'PACK' }));
  const plan = await autoscaler.tick();
  assert.deepEqual(provider.applied.at(-1), {
    groups: [
      { name: 'cpu', targetWorkers: 0, remove: [] },
      { name: 'gpu', targetWorkers: 2, remove: [] },
    ],
  });
  assert.equal(plan?.unsatisfiable.length, 1);
  assert.equal(provider.reconciles, 5, 'reconcile runs every round');
});

test('workers idle past the timeout are removed by id, never below minWorkers', async () => {
  const { provider, view, autoscaler } = setup([{ ...cpu, minWorkers: 1 }], { idleTimeoutS: 60 });
  provider.list = ['w1', 'w2', 'w3', 'w4'].map((id) => ({ id, group: 'cpu', state: 'running' }));
  view.nodeList = [
    head,
    worker('w1', cpu, 30),
    worker('w2', cpu, 30),
    worker('w3', cpu, 0, true),
    worker('w4', cpu, 30),
  ];
  await autoscaler.tick();
  assert.deepEqual(provider.applied, [{ groups: [{ name: 'cpu', targetWorkers: 4, remove: [] }] }]);

  view.nodeList = [
    head,
    worker('w1', cpu, 90),
    worker('w2', cpu, 61),
    worker('w3', cpu, 0, true),
    worker('w4', cpu, 59),
  ];
  await autoscaler.tick();
  assert.deepEqual(provider.applied.at(-1), {
    groups: [{ name: 'cpu', targetWorkers: 2, remove: ['w1', 'w2'] }],
  });

  // Still registered while they drain: the same removal is applied again, harmlessly.
  provider.list[0].state = 'terminating';
  provider.list[1].state = 'terminating';
  await autoscaler.tick();
  assert.equal(provider.applied.length, 3);
  assert.deepEqual(provider.applied[2], provider.applied[1]);

  // Gone; the busy one finishes and all idle out: one stays, the minimum.
  provider.list = provider.list.slice(2);
  view.nodeList = [head, worker('w3', cpu, 600), worker('w4', cpu, 120)];
  await autoscaler.tick();
  assert.deepEqual(provider.applied.at(-1), { groups: [{ name: 'cpu', targetWorkers: 1, remove: ['w3'] }] });
});

test('unsatisfiable demand is logged once per reason while it lasts', async () => {
  const { view, autoscaler, logs } = setup([cpu, gpu]);
  const tooBig: ResourceDemand = { bundles: [{ GPU: 8 }], strategy: 'PACK' };
  view.pending = [tooBig, tooBig];
  await autoscaler.tick();
  await autoscaler.tick();
  await autoscaler.tick();
  assert.equal(logs.at('warn').length, 1);
  assert.match(logs.at('warn')[0].msg, /demand cannot be satisfied: \{?.*GPU.*fits no worker group/);

  view.pending = [{ bundles: [{ TPU: 1 }], strategy: 'PACK' }, tooBig];
  await autoscaler.tick();
  assert.equal(logs.at('warn').length, 2, 'a new reason is logged');

  view.pending = [];
  await autoscaler.tick();
  view.pending = [tooBig];
  await autoscaler.tick();
  assert.equal(logs.at('warn').length, 3, 'a reason that went away and came back is logged again');
});

test('a failed round is logged and the loop goes on', async () => {
  const { provider, autoscaler, logs, plans } = setup([gpu], {}, { intervalMs: 1 });
  provider.failing = { shape: 3 };
  autoscaler.start();
  await waitFor(() => provider.applied.length === 1, 'a round that succeeds');
  await autoscaler.stop();
  assert.ok(provider.shapeCalls >= 4);
  assert.equal(logs.at('error').length, 1, 'the same failure is logged once');
  assert.match(JSON.stringify(logs.at('error')[0]), /cluster shape unavailable/);
  assert.ok(logs.at('info').some((l) => l.msg === 'cluster autoscaler recovered'));
  assert.ok(plans.length >= 1);
  const calls = provider.shapeCalls;
  await new Promise((r) => setImmediate(r));
  assert.equal(provider.shapeCalls, calls, 'no round after stop()');
});

test('a decision whose apply failed is applied again next round', async () => {
  const { provider, view, autoscaler } = setup([gpu]);
  view.pending = [{ bundles: [{ GPU: 1 }], strategy: 'PACK' }];
  provider.failing = { apply: 1 };
  assert.equal(await autoscaler.tick(), undefined);
  assert.deepEqual(provider.applied, []);
  assert.equal(provider.reconciles, 0);
  await autoscaler.tick();
  assert.deepEqual(provider.applied, [{ groups: [{ name: 'gpu', targetWorkers: 1, remove: [] }] }]);
});

test('rounds never overlap, and stop() waits for the one in progress', async () => {
  const { provider, autoscaler } = setup([cpu], {}, { intervalMs: 1 });
  let open!: () => void;
  provider.gate = new Promise((resolve) => {
    open = resolve;
  });
  const first = autoscaler.tick();
  const second = autoscaler.tick();
  assert.equal(first, second);
  autoscaler.start();
  await waitFor(() => provider.shapeCalls === 1, 'the round to begin');

  let stopped = false;
  const stopping = autoscaler.stop().then(() => {
    stopped = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(stopped, false);
  open();
  await stopping;
  assert.equal(provider.shapeCalls, 1);
  assert.equal(provider.applied.length, 1);
});
