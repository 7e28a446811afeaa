/**
 * A deployment's configuration turned into what placement needs for one replica. The only place
 * where Ray's default of one CPU per replica applies: `ray_actor_options` without `num_cpus` still
 * takes a CPU (so a node with N CPUs runs at most N default replicas), `num_cpus: 0` takes none.
 */
import type { DeploymentConfig, RayActorOptions } from '../../schema/deployment-config.ts';
import type { ReplicaRequest, ResourceSet } from './types.ts';

export const defaultNumCpus = 1;

export function resourcesFromActorOptions(options: RayActorOptions | undefined): ResourceSet {
  const resources: ResourceSet = { ...options?.resources };
  resources.CPU = options?.num_cpus ?? defaultNumCpus;
  if (options?.num_gpus !== undefined) resources.GPU = options.num_gpus;
  if (options?.memory !== undefined) resources.memory = options.memory;
  for (const name of Object.keys(resources)) if (resources[name] === 0) delete resources[name];
  return resources;
}

type PlacementConfig = Pick<
  DeploymentConfig,
  'ray_actor_options' | 'placement_group_bundles' | 'placement_group_strategy' | 'max_replicas_per_node'
>;

export function replicaRequest(
  replicaId: string,
  deployment: string,
  config: PlacementConfig,
): ReplicaRequest {
  const request: ReplicaRequest = {
    replicaId,
    deployment,
    resources: resourcesFromActorOptions(config.ray_actor_options),
  };
  if (config.placement_group_bundles && config.placement_group_bundles.length > 0) {
    request.bundles = config.placement_group_bundles.map((b) => ({ ...b }));
    request.strategy = config.placement_group_strategy ?? 'PACK';
  }
  if (config.max_replicas_per_node != null) request.maxReplicasPerNode = config.max_replicas_per_node;
  return request;
}
