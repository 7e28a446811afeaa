/**
 * What is allocated to which replica on which node, down to GPU devices. The scheduler decides;
 * the ledger is the bookkeeping it decides against, so that every tick sees what earlier ticks
 * handed out. A restarted head rebuilds it from the placements its nodes report (`restore`), which
 * is how it adopts running replicas instead of restarting them.
 */
import { type Need, NodeRecord, ResourceNames } from './node-record.ts';
import { epsilon, formatResources, invalidRequest, positive } from './resources.ts';
import type { Grant, NodeView, Placement, ResourceSet } from './types.ts';

export type AllocateResult = { ok: true; grant: Grant } | { ok: false; reason: string };

/** A node's capacity as the scheduler reads it in its hot loop: no copies, no lookups by id. */
export interface NodeCapacity {
  readonly id: string;
  /** What is free of `name` (GPU: the sum of free device shares); negative when overcommitted. */
  free(name: string): number;
  total(name: string): number;
  /** Whether `resources` can be granted now, devices included. */
  fits(resources: ResourceSet): boolean;
  /** Special resources (GPU, custom) the node offers: a replica not using them should go elsewhere. */
  readonly specialNames: readonly string[];
  /** -Infinity when `need` does not fit now, else the shares of the node's totals left free after it. */
  fitScore(need: Need): number;
  /** Kinds of special resource the node offers and `need` leaves unused. */
  unusedSpecials(need: Need): number;
}

export type { Need };

export interface LedgerSnapshot {
  nodes: Record<string, { used: ResourceSet; gpus: Record<string, number> }>;
  replicas: Record<string, Grant[]>;
}

interface HeldGrant {
  grant: Grant;
  node: NodeRecord;
}

export class ResourceLedger {
  #nodes = new Map<string, NodeRecord>();
  #held = new Map<string, HeldGrant[]>();
  #names = new ResourceNames();

  /** `resources` in the form NodeCapacity.fitScore reads: compile once per replica, judge many nodes. */
  compile(resources: ResourceSet): Need {
    return this.#names.compile(resources);
  }

  /**
   * Adds or updates a node's capacity; what is allocated there stays. A view whose `total` and
   * `gpuIds` are the same objects as last time is taken as unchanged (one comparison per node per
   * tick), so give a node new objects when its capacity changes rather than editing them in place.
   */
  setNode(node: Pick<NodeView, 'id' | 'total' | 'gpuIds'>): void {
    const record = this.#record(node.id);
    if (record.source && record.source.total === node.total && record.source.gpuIds === node.gpuIds) return;
    record.source = { total: node.total, gpuIds: node.gpuIds };
    const totals: ResourceSet = { ...node.total };
    delete totals.GPU;
    record.setTotals(totals, deviceIds(node));
  }

  hasNode(nodeId: string): boolean {
    return this.#nodes.get(nodeId)?.source !== undefined;
  }

  capacity(nodeId: string): NodeCapacity | undefined {
    const record = this.#nodes.get(nodeId);
    return record?.source ? record : undefined;
  }

  /** Free resources of a node (GPU: free device shares summed); undefined for an unknown node. */
  available(nodeId: string): ResourceSet | undefined {
    return this.#nodes.get(nodeId)?.available();
  }

  /** Device id -> share free on a node. */
  gpuFree(nodeId: string): Record<string, number> {
    return this.#nodes.get(nodeId)?.devices.free() ?? {};
  }

  /** Replicas holding anything on a node (to reschedule when it dies). */
  replicasOn(nodeId: string): string[] {
    return [...(this.#nodes.get(nodeId)?.replicas.keys() ?? [])];
  }

  grantsOf(replicaId: string): readonly Grant[] | undefined {
    return this.#held.get(replicaId)?.map((h) => h.grant);
  }

  /**
   * Reserves `resources` on a node for a replica, as one more grant of it (a replica with bundles
   * holds one per bundle). Fails, changing nothing, when they are not free or not a valid request.
   */
  allocate(nodeId: string, replicaId: string, resources: ResourceSet): AllocateResult {
    const invalid = invalidRequest(replicaId, resources);
    if (invalid) return { ok: false, reason: invalid };
    const node = this.#nodes.get(nodeId);
    if (!node?.source) return { ok: false, reason: `node ${nodeId} is not known to the ledger` };
    if (!node.fits(resources)) {
      return {
        ok: false,
        reason: `node ${nodeId} has ${formatResources(node.available())} free, replica ${replicaId} needs ${formatResources(positive(resources))}`,
      };
    }
    const take = node.devices.take(resources.GPU ?? 0)!;
    const grant: Grant = { nodeId, resources: positive(resources), gpuIds: take.gpuIds };
    if (take.gpuFractions) grant.gpuFractions = take.gpuFractions;
    this.#hold(node, replicaId, grant);
    return { ok: true, grant };
  }

  /** Frees everything a replica holds. Returns false when it held nothing. */
  release(replicaId: string): boolean {
    const held = this.#held.get(replicaId);
    if (!held) return false;
    while (held.length > 0) this.undoLast(replicaId);
    return true;
  }

  /** Frees a replica's most recent grant: how the scheduler backs out of a partial bundle placement. */
  undoLast(replicaId: string): void {
    const held = this.#held.get(replicaId);
    const last = held?.pop();
    if (!held || !last) return;
    if (held.length === 0) this.#held.delete(replicaId);
    const { node, grant } = last;
    node.take(withoutGpu(grant.resources), -1);
    node.devices.give(grant);
    const count = (node.replicas.get(replicaId) ?? 1) - 1;
    if (count === 0) node.replicas.delete(replicaId);
    else node.replicas.set(replicaId, count);
  }

  /**
   * Records what running replicas hold, exactly as they report it (same devices), replacing what
   * the ledger had for those ids. A running process uses what it uses, so nothing is refused; the
   * replicas whose grants overcommit a node or a device are returned for the caller to judge.
   * Nodes not yet known get their capacity when `setNode` comes.
   */
  restore(placements: readonly Placement[]): { replicaId: string; reason: string }[] {
    const conflicts: { replicaId: string; reason: string }[] = [];
    for (const placement of placements) {
      this.release(placement.replicaId);
      for (const grant of placement.grants) {
        const node = this.#record(grant.nodeId);
        const copy: Grant = {
          nodeId: grant.nodeId,
          resources: positive(grant.resources),
          gpuIds: [...grant.gpuIds],
        };
        if (grant.gpuFractions) copy.gpuFractions = { ...grant.gpuFractions };
        const over = node.devices.force(copy);
        this.#hold(node, placement.replicaId, copy);
        const exceeded = node.source
          ? Object.keys(copy.resources).filter((n) => n !== 'GPU' && node.free(n) < -epsilon)
          : [];
        if (over.length > 0 || exceeded.length > 0) {
          const what = [...exceeded, ...over.map((id) => `GPU device ${id}`)].join(', ');
          conflicts.push({
            replicaId: placement.replicaId,
            reason: `node ${grant.nodeId} is overcommitted: ${what}`,
          });
        }
      }
    }
    return conflicts;
  }

  /** Everything held, for tests and status pages. */
  snapshot(): LedgerSnapshot {
    const nodes: LedgerSnapshot['nodes'] = {};
    for (const [id, node] of this.#nodes) {
      const used: ResourceSet = { ...node.used };
      const gpus = node.devices.used();
      const gpuUsed = Object.values(gpus).reduce((a, b) => a + b, 0);
      if (gpuUsed > 0) used.GPU = gpuUsed;
      nodes[id] = { used, gpus };
    }
    const replicas: LedgerSnapshot['replicas'] = {};
    for (const [id, held] of this.#held) replicas[id] = held.map((h) => h.grant);
    return { nodes, replicas };
  }

  #record(nodeId: string): NodeRecord {
    let record = this.#nodes.get(nodeId);
    if (!record) {
      record = new NodeRecord(nodeId, this.#names);
      this.#nodes.set(nodeId, record);
    }
    return record;
  }

  #hold(node: NodeRecord, replicaId: string, grant: Grant): void {
    node.take(withoutGpu(grant.resources), 1);
    node.replicas.set(replicaId, (node.replicas.get(replicaId) ?? 0) + 1);
    let held = this.#held.get(replicaId);
    if (!held) {
      held = [];
      this.#held.set(replicaId, held);
    }
    held.push({ grant, node });
  }
}

/** GPUs are accounted per device, not in `used`. */
function withoutGpu(resources: ResourceSet): ResourceSet {
  if (!('GPU' in resources)) return resources;
  const { GPU: _gpu, ...rest } = resources;
  return rest;
}

/** The devices a node hands out (see NodeView.gpuIds for the rule when total.GPU and gpuIds disagree). */
export function deviceIds(node: Pick<NodeView, 'total' | 'gpuIds'>): string[] {
  const declared = node.total.GPU;
  if (declared === undefined) return [...node.gpuIds];
  const count = Math.max(0, Math.floor(declared + epsilon));
  if (node.gpuIds.length > 0) return node.gpuIds.slice(0, count);
  return Array.from({ length: count }, (_, i) => String(i));
}
