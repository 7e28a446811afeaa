/**
 * Placing a replica's placement-group bundles, all or nothing, by strategy:
 *
 * - STRICT_PACK: every bundle on one node (a tensor-parallel model's GPUs must share a machine);
 * - PACK: one node when one can hold them all, else as few as a greedy pass finds;
 * - STRICT_SPREAD: each bundle on a different node, found by a bounded backtracking search
 *   (bundles differ in size, so the first choice for bundle 0 can be the one bundle 1 needed);
 * - SPREAD: a node not used yet by this replica when one fits, else one it already uses.
 *
 * Bundle 0 holds the replica's own process: only its node counts toward spreading the deployment
 * and toward `max_replicas_per_node`. Grants go into the ledger as they are made and are undone
 * when the strategy fails, so a failed replica leaves the ledger as it found it.
 */
import { bestNode, type PassContext, rankedNodes } from './ranking.ts';
import { sumOf } from './resources.ts';
import type { PlacementStrategy, ReplicaRequest, ResourceSet } from './types.ts';

/** Allocations the STRICT_SPREAD search may try before it gives up on a replica. */
const searchBudget = 2000;

/** Places every bundle of `request` or none; returns whether it did. */
export function placeBundles(ctx: PassContext, request: ReplicaRequest, bundles: ResourceSet[]): boolean {
  const strategy: PlacementStrategy = request.strategy ?? 'PACK';
  switch (strategy) {
    case 'STRICT_PACK':
      return packOnOneNode(ctx, request, bundles);
    case 'PACK':
      return packOnOneNode(ctx, request, bundles) || greedy(ctx, request, bundles, 'reuse');
    case 'SPREAD':
      return greedy(ctx, request, bundles, 'spread');
    case 'STRICT_SPREAD':
      return strictSpread(ctx, request, bundles);
  }
}

function firstBundleOptions(request: ReplicaRequest) {
  return { deployment: request.deployment, maxReplicasPerNode: request.maxReplicasPerNode };
}

function packOnOneNode(ctx: PassContext, request: ReplicaRequest, bundles: ResourceSet[]): boolean {
  // Loose first (GPU by free sum): two 0.5-GPU bundles fit two half-used devices, which a device
  // check of their 1-GPU sum would refuse. Then each candidate is tried for real, bundle by bundle.
  const total = sumOf(bundles);
  for (const node of rankedNodes(ctx, total, { ...firstBundleOptions(request), loose: true })) {
    if (allocateAll(ctx, request.replicaId, node.id, bundles)) return true;
  }
  return false;
}

function allocateAll(ctx: PassContext, replicaId: string, nodeId: string, bundles: ResourceSet[]): boolean {
  for (let i = 0; i < bundles.length; i++) {
    if (!ctx.ledger.allocate(nodeId, replicaId, bundles[i]).ok) {
      for (let j = 0; j < i; j++) ctx.ledger.undoLast(replicaId);
      return false;
    }
  }
  return true;
}

/**
 * One bundle after another, each on the best node for it: 'reuse' prefers nodes this replica
 * already uses (fewer nodes), 'spread' prefers nodes it does not use yet.
 */
function greedy(
  ctx: PassContext,
  request: ReplicaRequest,
  bundles: ResourceSet[],
  mode: 'reuse' | 'spread',
): boolean {
  const used = new Set<string>();
  for (let i = 0; i < bundles.length; i++) {
    const bundle = bundles[i];
    const base = i === 0 ? firstBundleOptions(request) : {};
    const preferred = used.size === 0 ? undefined : mode === 'reuse' ? { only: used } : { exclude: used };
    const node =
      (preferred && bestNode(ctx, bundle, { ...base, ...preferred })) || bestNode(ctx, bundle, base);
    if (!node || !ctx.ledger.allocate(node.id, request.replicaId, bundle).ok) {
      ctx.ledger.release(request.replicaId);
      return false;
    }
    used.add(node.id);
  }
  return true;
}

function strictSpread(ctx: PassContext, request: ReplicaRequest, bundles: ResourceSet[]): boolean {
  if (bundles.length > ctx.nodes.length) return false;
  const used = new Set<string>();
  let budget = searchBudget;
  const assign = (i: number): boolean => {
    if (i === bundles.length) return true;
    const options = i === 0 ? { ...firstBundleOptions(request), exclude: used } : { exclude: used };
    for (const node of rankedNodes(ctx, bundles[i], options)) {
      if (budget-- <= 0) return false;
      if (!ctx.ledger.allocate(node.id, request.replicaId, bundles[i]).ok) continue;
      used.add(node.id);
      if (assign(i + 1)) return true;
      used.delete(node.id);
      ctx.ledger.undoLast(request.replicaId);
    }
    return false;
  };
  return assign(0);
}
