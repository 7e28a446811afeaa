/**
 * Which node a replica (or a bundle) should go to, as one order used everywhere:
 *
 * 1. fewest replicas of the same deployment on the node (Ray Serve spreads a deployment's replicas
 *    across nodes by default, so that losing one node loses a share of each deployment, not all);
 * 2. fewest special resources (GPU, custom) the node offers and the request leaves unused, so that
 *    CPU replicas do not take the CPUs GPU replicas will need on GPU nodes;
 * 3. most free resources after placing, as a share of the node's total, summed over what the
 *    request asks for (CPU when it asks for nothing);
 * 4. node id, so that the same input always gives the same placement.
 *
 * The pass context indexes running replicas by deployment and node once per pass, so the hot loop
 * is one scan over the schedulable nodes per replica with no scans of replicas.
 */
import type { NodeCapacity, ResourceLedger } from './ledger.ts';
import { epsilon } from './resources.ts';
import type { ExistingReplica, NodeView, ResourceSet } from './types.ts';

/**
 * Replicas per deployment per schedulable node: running ones plus those placed earlier in this
 * pass. Indexed by the node's position in the pass (an array read in the hot loop, not a map).
 * Replicas on nodes that get nothing (dead, draining) are not counted: no node competes with them.
 */
export class DeploymentCounts {
  #byDeployment = new Map<string, Int32Array>();
  #index: Map<string, number>;

  constructor(nodeIds: readonly string[], existing: readonly ExistingReplica[], skip: ReadonlySet<string>) {
    this.#index = new Map(nodeIds.map((id, i) => [id, i]));
    for (const replica of existing)
      if (!skip.has(replica.replicaId)) this.add(replica.deployment, replica.nodeId);
  }

  add(deployment: string, nodeId: string): void {
    const i = this.#index.get(nodeId);
    if (i === undefined) return;
    let perNode = this.#byDeployment.get(deployment);
    if (!perNode) {
      perNode = new Int32Array(this.#index.size);
      this.#byDeployment.set(deployment, perNode);
    }
    perNode[i]++;
  }

  /** Counts by node position in PassContext.nodes; undefined when the deployment has none. */
  of(deployment: string): Int32Array | undefined {
    return this.#byDeployment.get(deployment);
  }
}

export interface PassContext {
  ledger: ResourceLedger;
  /** Alive, not draining, known to the ledger; in node id order. */
  nodes: NodeCapacity[];
  /** Nodes that get nothing, for messages. */
  unschedulable: NodeView[];
  counts: DeploymentCounts;
}

export interface RankOptions {
  /** Count this deployment's replicas per node (the replica's own process goes there). */
  deployment?: string;
  maxReplicasPerNode?: number;
  /** Nodes to leave out (already used by this replica's other bundles, for SPREAD). */
  exclude?: ReadonlySet<string>;
  /** Keep only these nodes (already used by this replica's other bundles, for PACK). */
  only?: ReadonlySet<string>;
  /** Compare GPUs by their free sum, not by devices: a pre-filter before trying several bundles at once. */
  loose?: boolean;
}

/** The best node for `resources`, or undefined when none fits: one scan, no allocation. */
export function bestNode(
  ctx: PassContext,
  resources: ResourceSet,
  options: RankOptions = {},
): NodeCapacity | undefined {
  const perNode = options.deployment === undefined ? undefined : ctx.counts.of(options.deployment);
  const max = options.maxReplicasPerNode;
  const need = ctx.ledger.compile(resources);
  let best: NodeCapacity | undefined;
  let bestCount = 0;
  let bestWaste = 0;
  let bestScore = 0;
  const filtered = options.exclude !== undefined || options.only !== undefined;
  const nodes = ctx.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i];
    const count = perNode === undefined ? 0 : perNode[i];
    // Cheapest keys first: most nodes lose on count or waste without being judged for fit.
    if (best !== undefined && count > bestCount) continue;
    if (max !== undefined && count >= max) continue;
    if (filtered && !allowed(node, options)) continue;
    const waste = node.unusedSpecials(need);
    if (best !== undefined && count === bestCount && waste > bestWaste) continue;
    const score = options.loose ? looseScore(node, resources) : node.fitScore(need);
    if (score === Number.NEGATIVE_INFINITY) continue;
    if (best === undefined || count < bestCount || waste < bestWaste || score > bestScore + epsilon) {
      best = node;
      bestCount = count;
      bestWaste = waste;
      bestScore = score;
    }
  }
  return best;
}

/** Every node that fits, best first: for bundles, where the first choice may fail once tried. */
export function rankedNodes(
  ctx: PassContext,
  resources: ResourceSet,
  options: RankOptions = {},
): NodeCapacity[] {
  const perNode = options.deployment === undefined ? undefined : ctx.counts.of(options.deployment);
  const max = options.maxReplicasPerNode;
  const need = ctx.ledger.compile(resources);
  const keyed: { node: NodeCapacity; count: number; waste: number; score: number }[] = [];
  for (let i = 0; i < ctx.nodes.length; i++) {
    const node = ctx.nodes[i];
    const count = perNode === undefined ? 0 : perNode[i];
    if (max !== undefined && count >= max) continue;
    if (!allowed(node, options)) continue;
    const score = options.loose ? looseScore(node, resources) : node.fitScore(need);
    if (score === Number.NEGATIVE_INFINITY) continue;
    keyed.push({ node, count, waste: node.unusedSpecials(need), score });
  }
  // Array.prototype.sort is stable and ctx.nodes is in id order, so equal keys keep id order.
  keyed.sort(
    (a, b) =>
      a.count - b.count ||
      a.waste - b.waste ||
      (Math.abs(b.score - a.score) > epsilon ? b.score - a.score : 0),
  );
  return keyed.map((k) => k.node);
}

function allowed(node: NodeCapacity, options: RankOptions): boolean {
  if (options.exclude?.has(node.id)) return false;
  return options.only === undefined || options.only.has(node.id);
}

/**
 * Like fitScore with GPUs compared by their free sum, not per device: a pre-filter for several
 * bundles at once, which are then tried for real.
 */
function looseScore(node: NodeCapacity, resources: ResourceSet): number {
  let score = 0;
  for (const name in resources) {
    const amount = resources[name];
    if (!(amount > 0)) continue;
    const free = node.free(name);
    if (free + epsilon < amount) return Number.NEGATIVE_INFINITY;
    const total = node.total(name);
    if (total > 0) score += (free - amount) / total;
  }
  return score;
}
