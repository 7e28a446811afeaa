/**
 * Placement as the controller uses it: the resource ledger of the whole cluster across ticks, and
 * one scheduling pass per deployment for the replicas it wants to start (see runtime/placement).
 */
import type { ClusterNode } from '../cluster/cluster-node.ts';
import type { Orphan } from '../cluster/head-cluster.ts';
import { ResourceLedger, schedule } from '../placement/index.ts';
import type { ExistingReplica, Pending, Placement, ReplicaRequest } from '../placement/types.ts';

export interface Placed {
  placement: Placement;
  node: ClusterNode;
}

export class Placer {
  readonly #ledger = new ResourceLedger();
  readonly #existing = new Map<string, ExistingReplica>();
  readonly #nodes: () => ClusterNode[];

  constructor(nodes: () => ClusterNode[]) {
    this.#nodes = nodes;
  }

  place(requests: ReplicaRequest[]): { placed: Placed[]; pending: Pending[] } {
    const nodes = this.#nodes();
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const { placements, pending } = schedule({
      nodes: nodes.map((n) => n.view),
      ledger: this.#ledger,
      existing: [...this.#existing.values()],
      requests,
    });
    const placed: Placed[] = [];
    for (const placement of placements) {
      const node = byId.get(placement.nodeId)!;
      this.#existing.set(placement.replicaId, {
        replicaId: placement.replicaId,
        deployment: placement.deployment,
        nodeId: placement.nodeId,
      });
      placed.push({ placement, node });
    }
    return { placed, pending };
  }

  /**
   * A running replica the controller did not place (reported by a node after a head restart) takes
   * what it holds, before anything new is placed. Returns why it cannot, when its grants overcommit
   * the node (then nothing is held for it).
   */
  reserve(orphan: Orphan): string | undefined {
    const { report, replica } = orphan;
    const nodeId = replica.nodeId;
    const placement: Placement = {
      replicaId: report.spec.replicaId,
      deployment: `${report.spec.app}/${report.spec.deployment}`,
      nodeId,
      gpuIds: report.grants.filter((g) => g.nodeId === nodeId).flatMap((g) => g.gpuIds),
      grants: report.grants,
    };
    const conflicts = this.#ledger.restore([placement]);
    if (conflicts.length > 0) {
      this.#ledger.release(placement.replicaId);
      return conflicts.map((c) => c.reason).join('; ');
    }
    this.#existing.set(placement.replicaId, {
      replicaId: placement.replicaId,
      deployment: placement.deployment,
      nodeId,
    });
    return undefined;
  }

  release(replicaId: string): void {
    this.#ledger.release(replicaId);
    this.#existing.delete(replicaId);
  }

  /** Replicas placed on each node, for the cluster autoscaler's idle tracking. */
  replicasOn(nodeId: string): number {
    return this.#ledger.replicasOn(nodeId).length;
  }

  available(nodeId: string): Record<string, number> | undefined {
    return this.#ledger.available(nodeId);
  }
}
