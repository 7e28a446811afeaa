/**
 * Builders for placement tests: nodes, requests and a one-call pass over a fresh or given ledger.
 */
import { ResourceLedger } from './ledger.ts';
import { type ScheduleResult, schedule } from './scheduler.ts';
import type { ExistingReplica, NodeView, Placement, ReplicaRequest, ResourceSet } from './types.ts';

export const GiB = 2 ** 30;

export function node(id: string, total: ResourceSet, extra: Partial<NodeView> = {}): NodeView {
  const gpus = total.GPU ?? 0;
  return {
    id,
    total,
    labels: {},
    gpuIds: Array.from({ length: Math.floor(gpus) }, (_, i) => String(i)),
    alive: true,
    ...extra,
  };
}

export function replica(
  replicaId: string,
  resources: ResourceSet,
  extra: Partial<ReplicaRequest> = {},
): ReplicaRequest {
  return { replicaId, deployment: 'app/Model', resources, ...extra };
}

/** `count` replicas `prefix-0`, `prefix-1`, ... of one deployment. */
export function replicas(
  prefix: string,
  count: number,
  resources: ResourceSet,
  extra: Partial<ReplicaRequest> = {},
): ReplicaRequest[] {
  return Array.from({ length: count }, (_, i) => replica(`${prefix}-${i}`, resources, extra));
}

export function run(
  nodes: NodeView[],
  requests: ReplicaRequest[],
  options: { ledger?: ResourceLedger; existing?: ExistingReplica[] } = {},
): ScheduleResult & { ledger: ResourceLedger } {
  const ledger = options.ledger ?? new ResourceLedger();
  return { ...schedule({ nodes, ledger, existing: options.existing ?? [], requests }), ledger };
}

/** Replica id -> node id, for compact assertions. */
export function nodesOf(placements: readonly Placement[]): Record<string, string> {
  return Object.fromEntries(placements.map((p) => [p.replicaId, p.nodeId]));
}

/** Replica id -> CUDA_VISIBLE_DEVICES-style list. */
export function gpusOf(placements: readonly Placement[]): Record<string, string> {
  return Object.fromEntries(placements.map((p) => [p.replicaId, `${p.nodeId}:${p.gpuIds.join(',')}`]));
}

export function existingFrom(placements: readonly Placement[]): ExistingReplica[] {
  return placements.map((p) => ({ replicaId: p.replicaId, deployment: p.deployment, nodeId: p.nodeId }));
}
