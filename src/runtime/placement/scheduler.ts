/**
 * One scheduling pass: where each requested replica goes, or why it waits. Pure apart from the
 * ledger it is given, which it updates for what it places (all of a replica's bundles or none), so
 * the controller can call it on every tick with the replicas it still needs.
 *
 * Order within a pass: replicas needing more GPUs first, then more bundles, then as requested.
 * A 4-GPU STRICT_PACK replica asked for in the same tick as four 1-GPU replicas would otherwise
 * find every 4-GPU node already split by the small ones. Results come back in request order.
 *
 * A request for a replica the ledger already holds returns its current placement (the controller
 * may ask again after a missed message; level-triggered, not an error).
 */
import { placeBundles } from './bundles.ts';
import type { ResourceLedger } from './ledger.ts';
import { explainPending, invalidPending } from './pending.ts';
import { bestNode, DeploymentCounts, type PassContext } from './ranking.ts';
import { epsilon, fitsIn, formatResources, invalidRequest, positive } from './resources.ts';
import type {
  ExistingReplica,
  Grant,
  NodeView,
  Pending,
  Placement,
  ReplicaRequest,
  ResourceSet,
} from './types.ts';

export interface ScheduleInput {
  nodes: readonly NodeView[];
  ledger: ResourceLedger;
  /** Running replicas: they count toward spreading and `max_replicas_per_node`. */
  existing: readonly ExistingReplica[];
  requests: readonly ReplicaRequest[];
}

export interface ScheduleResult {
  placements: Placement[];
  pending: Pending[];
}

export function schedule(input: ScheduleInput): ScheduleResult {
  const { ledger, requests } = input;
  const ctx = passContext(input);
  const outcomes: (Placement | Pending | undefined)[] = new Array(requests.length);
  for (const i of passOrder(requests)) {
    const request = requests[i];
    const held = ledger.grantsOf(request.replicaId);
    if (held && held.length > 0) {
      const placement = placementOf(
        request,
        [...held],
        request.bundles !== undefined && request.bundles.length > 0,
      );
      ctx.counts.add(request.deployment, placement.nodeId);
      outcomes[i] = placement;
      continue;
    }
    outcomes[i] = placeOne(ctx, request);
  }
  const placements: Placement[] = [];
  const pending: Pending[] = [];
  for (const outcome of outcomes) {
    if (outcome && 'grants' in outcome) placements.push(outcome);
    else if (outcome) pending.push(outcome);
  }
  return { placements, pending };
}

function passContext(input: ScheduleInput): PassContext {
  const nodes = [...input.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const schedulable = [];
  const unschedulable: NodeView[] = [];
  for (const node of nodes) {
    input.ledger.setNode(node);
    if (node.alive && !node.draining) schedulable.push(input.ledger.capacity(node.id)!);
    else unschedulable.push(node);
  }
  const requested = new Set(input.requests.map((r) => r.replicaId));
  return {
    ledger: input.ledger,
    nodes: schedulable,
    unschedulable,
    counts: new DeploymentCounts(
      schedulable.map((n) => n.id),
      input.existing,
      requested,
    ),
  };
}

function passOrder(requests: readonly ReplicaRequest[]): number[] {
  const gpus = requests.map((r) =>
    r.bundles && r.bundles.length > 0
      ? r.bundles.reduce((sum, b) => sum + (b.GPU ?? 0), 0)
      : (r.resources.GPU ?? 0),
  );
  const order = requests.map((_, i) => i);
  // Most requests ask for no GPU and no bundles: skip the sort when nothing would move.
  if (!gpus.some((g) => g > 0) && !requests.some((r) => r.bundles && r.bundles.length > 1)) return order;
  const bundles = (i: number) => requests[i].bundles?.length ?? 0;
  return order.sort((a, b) => gpus[b] - gpus[a] || bundles(b) - bundles(a) || a - b);
}

function placeOne(ctx: PassContext, request: ReplicaRequest): Placement | Pending {
  const bundles = request.bundles && request.bundles.length > 0 ? request.bundles : undefined;
  const invalid = validate(request, bundles);
  if (invalid) return invalidPending(request, bundles, invalid);
  let grants: Grant[];
  if (bundles) {
    if (!placeBundles(ctx, request, bundles)) return explainPending(ctx, request, bundles);
    grants = [...ctx.ledger.grantsOf(request.replicaId)!];
  } else {
    const node = bestNode(ctx, request.resources, {
      deployment: request.deployment,
      maxReplicasPerNode: request.maxReplicasPerNode,
    });
    const result = node && ctx.ledger.allocate(node.id, request.replicaId, request.resources);
    if (!result?.ok) return explainPending(ctx, request, undefined);
    grants = [result.grant];
  }
  const placement = placementOf(request, grants, bundles !== undefined);
  ctx.counts.add(request.deployment, placement.nodeId);
  return placement;
}

function validate(request: ReplicaRequest, bundles: ResourceSet[] | undefined): string | undefined {
  const id = request.replicaId;
  const max = request.maxReplicasPerNode;
  if (max !== undefined && !(Number.isInteger(max) && max > 0)) {
    return `replica ${id} has max_replicas_per_node ${max}; it must be a positive integer`;
  }
  const invalid = invalidRequest(id, request.resources, 'ray_actor_options');
  if (invalid || !bundles) return invalid;
  for (let i = 0; i < bundles.length; i++) {
    const bad = invalidRequest(id, bundles[i], `placement_group_bundles[${i}]`);
    if (bad) return bad;
  }
  if (!fitsIn(bundles[0], request.resources)) {
    return (
      `replica ${id} asks for ${formatResources(positive(request.resources))} in ray_actor_options, more than its ` +
      `first placement group bundle ${formatResources(positive(bundles[0]))}: the replica runs inside that bundle`
    );
  }
  return undefined;
}

/** The replica's node is its first grant's; it may use the devices of every grant on that node. */
export function placementOf(request: ReplicaRequest, grants: Grant[], withBundles: boolean): Placement {
  const nodeId = grants[0].nodeId;
  if (grants.length === 1 && !withBundles) {
    // The common case, kept allocation-light: a full pass builds a thousand of these.
    const [grant] = grants;
    const single: Placement = {
      replicaId: request.replicaId,
      deployment: request.deployment,
      nodeId,
      gpuIds: [...grant.gpuIds],
      grants,
    };
    if (grant.gpuFractions) single.gpuFractions = { ...grant.gpuFractions };
    return single;
  }
  const shares = new Map<string, number>();
  for (const grant of grants) {
    if (grant.nodeId !== nodeId) continue;
    for (const id of grant.gpuIds) shares.set(id, (shares.get(id) ?? 0) + (grant.gpuFractions?.[id] ?? 1));
  }
  const placement: Placement = {
    replicaId: request.replicaId,
    deployment: request.deployment,
    nodeId,
    gpuIds: [...shares.keys()],
    grants,
  };
  if (withBundles) placement.bundleNodes = grants.map((g) => g.nodeId);
  const shared = [...shares].filter(([, share]) => share < 1 - epsilon);
  if (shared.length > 0) placement.gpuFractions = Object.fromEntries(shares);
  return placement;
}
