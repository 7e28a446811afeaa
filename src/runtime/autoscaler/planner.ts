/**
 * The cluster autoscaler's decision as a pure function: given the worker groups, the nodes' load,
 * the workers still starting and the demand that could not be placed, how many workers each group
 * should have and which idle ones to remove. No I/O and no clock, so every rule has a worked example.
 *
 * Demand is placed first on the free capacity that exists (registered nodes, then workers still
 * starting), then on workers this plan adds, cheapest group first, first-fit decreasing so that a
 * big placement group is not starved by many small replicas.
 */
import {
  add,
  fits,
  formatResources,
  normalizedSize,
  resourceScale,
  specialWaste,
  subtract,
  sum,
} from './resources.ts';
import type {
  ClusterShape,
  NodeLoad,
  ProviderWorker,
  ResourceDemand,
  ResourceSet,
  ScaleDecision,
  WorkerGroupShape,
} from './types.ts';

export interface PlanInput {
  shape: ClusterShape;
  /** Registered nodes, the head included. */
  nodes: readonly NodeLoad[];
  /** Workers the provider started that have not registered yet; their group's size is their capacity. */
  pendingWorkers: readonly ProviderWorker[];
  /** Demand that could not be placed on the cluster as it is. */
  demand: readonly ResourceDemand[];
}

export interface ScalePlan extends ScaleDecision {
  /** Demand no worker group can hold: too large for any worker, or the groups that could are at max. */
  unsatisfiable: { demand: ResourceDemand; reason: string }[];
  /** Demand left for a later plan because Conservative upscaling limits how many workers one adds. */
  deferred: ResourceDemand[];
}

/** Somewhere bundles can go: a registered node, a starting worker, or a worker this plan adds. */
interface Bin {
  id: string;
  free: ResourceSet;
  /** What the node offers in all, to judge whether a bundle would waste its special resources. */
  offers: ResourceSet;
  idleForS: number;
}

type Failure = { kind: 'unsatisfiable' | 'deferred'; reason: string };

export function planScaling(input: PlanInput): ScalePlan {
  const { shape } = input;
  const groups = new Map(shape.groups.map((g) => [g.name, g]));
  const registered = new Set(input.nodes.map((n) => n.id));
  // A worker that registered between the two reads would otherwise count twice.
  const pending = input.pendingWorkers.filter(
    (w) => w.state !== 'terminating' && !registered.has(w.id) && groups.has(w.group),
  );

  const existing = new Map<string, number>(shape.groups.map((g) => [g.name, 0]));
  for (const node of input.nodes) {
    if (node.group !== undefined && existing.has(node.group))
      existing.set(node.group, existing.get(node.group)! + 1);
  }
  for (const worker of pending) existing.set(worker.group, existing.get(worker.group)! + 1);

  const scale = resourceScale([
    ...shape.groups.map((g) => g.resourcesPerWorker),
    ...input.nodes.map((n) => n.total),
  ]);
  const bins: Bin[] = [
    ...input.nodes.map((n) => ({
      id: n.id,
      free: { ...n.available },
      offers: n.total,
      idleForS: n.idleForS,
    })),
    ...pending.map((w) => newBin(w.id, groups.get(w.group)!)),
  ];
  const added = new Map<string, number>(shape.groups.map((g) => [g.name, 0]));
  let newWorkerSeq = 0;
  const addBin = (group: WorkerGroupShape): Bin => {
    const bin = newBin(`new:${group.name}:${newWorkerSeq++}`, group);
    bins.push(bin);
    added.set(group.name, added.get(group.name)! + 1);
    return bin;
  };

  // The floor comes first and is not rate-limited: the operator would enforce it anyway, and
  // demand can then use these workers instead of asking for more.
  for (const group of shape.groups) {
    for (let n = existing.get(group.name)!; n < group.minWorkers; n++) addBin(group);
  }

  const runningWorkers = input.nodes.filter((n) => n.group !== undefined).length;
  const rateLimit = shape.upscalingMode === 'Conservative' ? Math.max(1, runningWorkers) : Infinity;
  let addedForDemand = 0;
  const touched = new Set<string>();
  const unsatisfiable: ScalePlan['unsatisfiable'] = [];
  const deferred: ResourceDemand[] = [];

  const hasRoom = (group: WorkerGroupShape) =>
    existing.get(group.name)! + added.get(group.name)! < group.maxWorkers;

  /** Adds the cheapest worker that can hold `unit`, or says why none can be added. */
  const addWorkerFor = (unit: ResourceSet, strategy: ResourceDemand['strategy']): Bin | Failure => {
    const candidates = shape.groups
      .map((group, order) => ({ group, order }))
      .filter(({ group }) => fits(group.resourcesPerWorker, unit))
      .sort(
        (a, b) =>
          specialWaste(a.group.resourcesPerWorker, unit) - specialWaste(b.group.resourcesPerWorker, unit) ||
          normalizedSize(a.group.resourcesPerWorker, scale) -
            normalizedSize(b.group.resourcesPerWorker, scale) ||
          a.order - b.order,
      );
    if (candidates.length === 0) return { kind: 'unsatisfiable', reason: tooLarge(unit, strategy, shape) };
    const choice = candidates.find(({ group }) => hasRoom(group));
    if (!choice) {
      const full = candidates.map(({ group }) => `${group.name} (${group.maxWorkers})`).join(', ');
      return {
        kind: 'unsatisfiable',
        reason: `${formatResources(unit)} fits only worker groups already at maxWorkers: ${full}`,
      };
    }
    if (addedForDemand >= rateLimit) {
      return {
        kind: 'deferred',
        reason: `upscalingMode Conservative adds at most ${rateLimit} worker(s) per round`,
      };
    }
    addedForDemand++;
    return addBin(choice.group);
  };

  /** Places one demand all or nothing; on failure every change it made is undone. */
  const place = (demand: ResourceDemand): Failure | undefined => {
    const units =
      demand.strategy === 'STRICT_PACK'
        ? [sum(demand.bundles)]
        : [...demand.bundles].sort((a, b) => normalizedSize(b, scale) - normalizedSize(a, scale));
    const used = new Set<Bin>();
    const placed: { bin: Bin; unit: ResourceSet }[] = [];
    const mark = { bins: bins.length, added: new Map(added), addedForDemand };
    for (const unit of units) {
      let bin = chooseBin(bins, unit, demand.strategy, used);
      if (!bin) {
        const result = addWorkerFor(unit, demand.strategy);
        if (!('id' in result)) {
          for (const p of placed) add(p.bin.free, p.unit);
          bins.length = mark.bins;
          for (const [name, n] of mark.added) added.set(name, n);
          addedForDemand = mark.addedForDemand;
          return result;
        }
        bin = result;
      }
      subtract(bin.free, unit);
      used.add(bin);
      placed.push({ bin, unit });
    }
    for (const bin of used) touched.add(bin.id);
    return undefined;
  };

  const ordered = input.demand
    .map((demand, order) => ({ demand, order, size: demandSize(demand, scale) }))
    .sort((a, b) => b.size[0] - a.size[0] || b.size[1] - a.size[1] || a.order - b.order);
  for (const { demand } of ordered) {
    const failure = place(demand);
    if (failure?.kind === 'unsatisfiable') unsatisfiable.push({ demand, reason: failure.reason });
    else if (failure?.kind === 'deferred') deferred.push(demand);
  }

  const decision: ScalePlan = { groups: [], unsatisfiable, deferred };
  for (const group of shape.groups) {
    let count = existing.get(group.name)! + added.get(group.name)!;
    const timeout = group.idleTimeoutS ?? shape.idleTimeoutS;
    // idleForS is 0 while something runs on a node, so a zero timeout still never takes a busy one.
    const idle = input.nodes
      .filter((n) => n.group === group.name && n.idleForS > 0 && n.idleForS >= timeout && !touched.has(n.id))
      .sort((a, b) => b.idleForS - a.idleForS || a.id.localeCompare(b.id));
    const remove: string[] = [];
    for (const node of idle) {
      if (count <= group.minWorkers) break;
      remove.push(node.id);
      count--;
    }
    decision.groups.push({ name: group.name, targetWorkers: count, remove });
  }
  return decision;
}

function newBin(id: string, group: WorkerGroupShape): Bin {
  return { id, free: { ...group.resourcesPerWorker }, offers: group.resourcesPerWorker, idleForS: 0 };
}

/**
 * The existing bin a unit should go on, or undefined when none may take it. PACK keeps a demand's
 * bundles together, SPREAD apart (both only as a preference); STRICT_SPREAD forbids sharing. Among
 * equals: a node whose GPUs the unit would not waste, then the busiest, so idle nodes can go.
 */
function chooseBin(
  bins: readonly Bin[],
  unit: ResourceSet,
  strategy: ResourceDemand['strategy'],
  used: ReadonlySet<Bin>,
): Bin | undefined {
  let best: Bin | undefined;
  let bestKey: number[] = [];
  bins.forEach((bin, order) => {
    if (strategy === 'STRICT_SPREAD' && used.has(bin)) return;
    if (!fits(bin.free, unit)) return;
    const key = [affinity(strategy, used.has(bin)), specialWaste(bin.offers, unit), bin.idleForS, order];
    if (!best || lexLess(key, bestKey)) {
      best = bin;
      bestKey = key;
    }
  });
  return best;
}

/** 0 where the strategy would rather have this bin: PACK one already used, SPREAD a fresh one. */
function affinity(strategy: ResourceDemand['strategy'], used: boolean): number {
  if (strategy === 'PACK') return used ? 0 : 1;
  if (strategy === 'SPREAD') return used ? 1 : 0;
  return 0;
}

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/** [largest unit that must fit one worker, total]: the keys first-fit decreasing orders by. */
function demandSize(demand: ResourceDemand, scale: ResourceSet): [number, number] {
  const sizes = demand.bundles.map((b) => normalizedSize(b, scale));
  const total = sizes.reduce((a, b) => a + b, 0);
  return [demand.strategy === 'STRICT_PACK' ? total : Math.max(0, ...sizes), total];
}

function tooLarge(unit: ResourceSet, strategy: ResourceDemand['strategy'], shape: ClusterShape): string {
  const what =
    strategy === 'STRICT_PACK'
      ? `${formatResources(unit)} (STRICT_PACK: all bundles on one worker)`
      : formatResources(unit);
  if (shape.groups.length === 0) return `${what} fits no worker: the cluster has no worker groups`;
  const offers = shape.groups.map((g) => `${g.name} ${formatResources(g.resourcesPerWorker)}`).join(', ');
  return `${what} fits no worker group's worker: ${offers}`;
}
