/**
 * What the cluster autoscaler reads from the head: each live node's load (with how long nothing has
 * been placed on it) and the demand of replicas that could not be placed.
 */
import type { ClusterView } from '../autoscaler/cluster-autoscaler.ts';
import type { NodeLoad } from '../autoscaler/types.ts';
import type { ServeController } from '../controller/controller.ts';
import type { HeadCluster } from './head-cluster.ts';

export function autoscalingView(cluster: HeadCluster, controller: ServeController): ClusterView {
  const idleSince = new Map<string, number>();
  return {
    nodes(): NodeLoad[] {
      const now = Date.now();
      const loads: NodeLoad[] = [];
      for (const node of cluster.nodes()) {
        if (!node.view.alive) continue;
        const usage = controller.nodeUsage(node.id);
        if (usage.replicas > 0) idleSince.delete(node.id);
        else if (!idleSince.has(node.id)) idleSince.set(node.id, now);
        const since = idleSince.get(node.id);
        loads.push({
          id: node.id,
          group: node.group,
          total: node.view.total,
          available: usage.available ?? node.view.total,
          idleForS: since === undefined ? 0 : (now - since) / 1000,
        });
      }
      for (const id of idleSince.keys()) if (!cluster.node(id)) idleSince.delete(id);
      return loads;
    },
    demand: () => controller.unplacedDemand(),
  };
}
