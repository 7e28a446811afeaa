/**
 * Why a replica could not be placed, in words an operator can act on: what it needs, the free
 * capacity that came closest, and what else stood in the way (max_replicas_per_node, GPUs free only
 * in parts of devices, nodes dead or draining). Runs only for replicas that stay pending, so it may
 * take its time.
 */
import type { NodeCapacity } from './ledger.ts';
import type { PassContext } from './ranking.ts';
import { epsilon, formatAmount, formatResources, positive, sumOf } from './resources.ts';
import type { Pending, PlacementStrategy, ReplicaRequest, ResourceSet } from './types.ts';

/** Nodes listed by name in a reason; the rest are counted. */
const listedNodes = 5;

const strategyWords: Record<PlacementStrategy, string> = {
  PACK: 'as few nodes as possible',
  SPREAD: 'as many nodes as possible',
  STRICT_PACK: 'all on one node',
  STRICT_SPREAD: 'each on a different node',
};

export function demandOf(request: ReplicaRequest, bundles: ResourceSet[] | undefined): Pending['demand'] {
  if (!bundles) return { bundles: [positive(request.resources)], strategy: 'PACK' };
  return { bundles: bundles.map(positive), strategy: request.strategy ?? 'PACK' };
}

export function invalidPending(
  request: ReplicaRequest,
  bundles: ResourceSet[] | undefined,
  reason: string,
): Pending {
  return {
    replicaId: request.replicaId,
    deployment: request.deployment,
    reason,
    neverFits: true,
    demand: demandOf(request, bundles),
  };
}

export function explainPending(
  ctx: PassContext,
  request: ReplicaRequest,
  bundles: ResourceSet[] | undefined,
): Pending {
  const demand = demandOf(request, bundles);
  const need = sumOf(demand.bundles);
  const needs = bundles
    ? `needs bundles [${demand.bundles.map(formatResources).join(', ')}] with ${demand.strategy} (${strategyWords[demand.strategy]})`
    : `needs ${formatResources(need)}`;
  const pending = (reason: string, neverFits: boolean): Pending => ({
    replicaId: request.replicaId,
    deployment: request.deployment,
    reason,
    neverFits,
    demand,
  });
  const unschedulable = unschedulableClause(ctx);
  if (ctx.nodes.length === 0) return pending(`${needs}; no node is schedulable${unschedulable}`, false);

  const never = neverFitReason(ctx, demand.bundles, demand.strategy);
  if (never)
    return pending(`${needs}, ${never}; it can never fit on the current nodes${unschedulable}`, true);

  const clauses = [`${needs}; free: ${closestNodes(ctx, need)}`];
  const max = request.maxReplicasPerNode;
  if (max !== undefined) {
    const perNode = ctx.counts.of(request.deployment);
    const full = ctx.nodes.filter((_, i) => (perNode?.[i] ?? 0) >= max).map((n) => n.id);
    if (full.length > 0) clauses.push(`max_replicas_per_node ${max} reached on ${nameList(full)}`);
  }
  const gpus = Math.max(0, ...demand.bundles.map((b) => b.GPU ?? 0));
  if (gpus > 0) {
    const split = ctx.nodes.filter((n) => n.free('GPU') + epsilon >= gpus && !n.fits({ GPU: gpus }));
    for (const node of split.slice(0, listedNodes)) {
      const parts = Object.entries(ctx.ledger.gpuFree(node.id))
        .filter(([, free]) => free > epsilon)
        .map(([id, free]) => `${id}: ${formatAmount('GPU', free)}`);
      clauses.push(`GPU on ${node.id} is free only in parts of devices (${parts.join(', ')})`);
    }
  }
  return pending(clauses.join('; ') + unschedulable, false);
}

/** Why no schedulable node could hold the demand even empty, or undefined when one could. */
function neverFitReason(
  ctx: PassContext,
  bundles: ResourceSet[],
  strategy: PlacementStrategy,
): string | undefined {
  const holds = (node: NodeCapacity, set: ResourceSet) => {
    for (const name in set) if (set[name] > 0 && node.total(name) + epsilon < set[name]) return false;
    return true;
  };
  const largest = () => {
    const best = closest(ctx.nodes, sumOf(bundles), (n, name) => n.total(name))[0];
    return `largest: ${best.id} ${formatResources(totals(best))}`;
  };
  if (strategy === 'STRICT_PACK' || bundles.length === 1) {
    const need = sumOf(bundles);
    if (!ctx.nodes.some((n) => holds(n, need)))
      return `more than any schedulable node has in total (${largest()})`;
    return undefined;
  }
  const misfit = bundles.find((b) => !ctx.nodes.some((n) => holds(n, b)));
  if (misfit)
    return `bundle ${formatResources(misfit)} is more than any schedulable node has in total (${largest()})`;
  if (strategy === 'STRICT_SPREAD' && bundles.length > ctx.nodes.length) {
    return `${bundles.length} bundles on distinct nodes and only ${ctx.nodes.length} schedulable`;
  }
  return undefined;
}

/** The nodes whose free capacity came closest to `need`, named in id order, the rest counted. */
function closestNodes(ctx: PassContext, need: ResourceSet): string {
  const picked = closest(ctx.nodes, need, (n, name) => n.free(name)).slice(0, listedNodes);
  picked.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const free = picked.map((n) => {
    const available = ctx.ledger.available(n.id) ?? {};
    const positiveFree = positive(available);
    return `${n.id} ${Object.keys(positiveFree).length > 0 ? formatResources(positiveFree) : '(nothing free)'}`;
  });
  const more = ctx.nodes.length - picked.length;
  return free.join(', ') + (more > 0 ? ` and ${more} more node${more === 1 ? '' : 's'}` : '');
}

/** Nodes ordered by how much of `need` they cover (each resource's covered share, summed), best first. */
function closest(
  nodes: readonly NodeCapacity[],
  need: ResourceSet,
  amount: (node: NodeCapacity, name: string) => number,
): NodeCapacity[] {
  const names = Object.keys(need).filter((name) => need[name] > 0);
  const cover = (node: NodeCapacity) =>
    names.reduce((sum, name) => sum + Math.min(Math.max(amount(node, name), 0) / need[name], 1), 0);
  return nodes
    .map((node) => ({
      node,
      cover: cover(node),
      fits: names.every((name) => amount(node, name) + epsilon >= need[name]),
    }))
    .sort((a, b) => Number(b.fits) - Number(a.fits) || b.cover - a.cover)
    .map((c) => c.node);
}

function totals(node: NodeCapacity): ResourceSet {
  const out: ResourceSet = {};
  for (const name of ['CPU', 'GPU', 'memory', ...node.specialNames]) {
    const total = node.total(name);
    if (total > 0) out[name] = total;
  }
  return out;
}

function unschedulableClause(ctx: PassContext): string {
  if (ctx.unschedulable.length === 0) return '';
  const names = ctx.unschedulable.map((n) => `${n.id} (${n.alive ? 'draining' : 'dead'})`);
  return `; not schedulable: ${nameList(names)}`;
}

function nameList(names: string[]): string {
  if (names.length <= listedNodes) return names.join(', ');
  return `${names.slice(0, listedNodes).join(', ')} and ${names.length - listedNodes} more`;
}
