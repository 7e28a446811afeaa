/**
 * Placement as the controller uses it: the resource ledger of the whole cluster across ticks, and
 * one scheduling pass per deployment for the replicas it wants to start (see runtime/placement).
 */
import type { ClusterNode } from '../cluster/cluster-node.ts';
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

  /** A replica the controller did not place (adopted after a head restart) takes what it holds. */
  restore(placement: Placement): void {
    this.#ledger.restore([placement]);
    this.#existing.set(placement.replicaId, {
      replicaId: placement.replicaId,
      deployment: placement.deployment,
      nodeId: placement.nodeId,
    });
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
