/**
 * The head's cluster autoscaler: local worker processes (`--autoscaling-config`) or the head's own
 * RayCluster on Kubernetes (`--autoscaling-provider kubernetes`, set by the operator).
 */
import type { Logger } from '../observability/logger.ts';
import type { AutoscalingConfig } from '../runtime/autoscaler/autoscaling-config.ts';
import { ClusterAutoscaler } from '../runtime/autoscaler/cluster-autoscaler.ts';
import { KubernetesProvider } from '../runtime/autoscaler/kubernetes-provider.ts';
import { LocalProvider, raylineWorkerSpawner } from '../runtime/autoscaler/local-provider.ts';
import type { NodeProvider } from '../runtime/autoscaler/types.ts';
import { autoscalingView } from '../runtime/cluster/autoscaling-view.ts';
import type { Head } from '../runtime/head.ts';

export function startClusterAutoscaler(
  head: Head,
  options: { log: Logger; config: AutoscalingConfig | undefined; headAddress: string; token?: string },
): { stop(): Promise<void> } {
  const log = options.log.child({ component: 'autoscaler' });
  const local = options.config
    ? new LocalProvider({
        config: options.config,
        spawnWorker: raylineWorkerSpawner({ headAddress: options.headAddress, token: options.token }),
        isRegistered: (id) => head.cluster.workers.has(id),
        log,
      })
    : undefined;
  let provider: NodeProvider;
  try {
    provider = local ?? KubernetesProvider.fromEnvironment({ log });
  } catch (error) {
    // Serving matters more than scaling: the head runs on, at its current size, and says why.
    log.error({ err: error }, `cluster autoscaler not started: ${(error as Error).message}`);
    return { stop: async () => {} };
  }
  const autoscaler = new ClusterAutoscaler({
    provider,
    view: autoscalingView(head.cluster, head.controller),
    log,
  });
  autoscaler.start();
  log.info({ provider: local ? 'local' : 'kubernetes' }, 'cluster autoscaler started');
  return {
    async stop() {
      await autoscaler.stop();
      await local?.close();
    },
  };
}
