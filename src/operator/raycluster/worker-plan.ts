/**
 * Decides, for one worker group, which pods to delete and how many to create: a pure function of the
 * group's spec and the pods that exist, so every rule KubeRay users rely on has a unit test.
 */
import type { WorkerGroupSpec } from '../../schema/raycluster.ts';
import type { Pod } from './kube-types.ts';

export interface WorkerPlan {
  desired: number;
  /** Pod names to delete, each with the reason, in order. */
  deletions: { name: string; reason: 'finished' | 'workersToDelete' | 'surplus' }[];
  creations: number;
}

export function desiredWorkers(group: WorkerGroupSpec, clusterSuspended: boolean): number {
  if (clusterSuspended || group.suspend) return 0;
  const replicas = Math.min(Math.max(group.replicas, group.minReplicas), group.maxReplicas);
  return replicas * group.numOfHosts;
}

function isFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
}

function isReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * @param pods the group's pods that are not being deleted already
 * @param autoscaling with in-tree autoscaling, surplus pods go only through workersToDelete: the
 *   autoscaler chose which ones are idle, and the operator must not second-guess it
 */
export function planWorkers(
  group: WorkerGroupSpec,
  pods: readonly Pod[],
  options: { autoscaling: boolean; clusterSuspended: boolean },
): WorkerPlan {
  const desired = desiredWorkers(group, options.clusterSuspended);
  const deletions: WorkerPlan['deletions'] = [];
  const toDelete = new Set(group.scaleStrategy?.workersToDelete ?? []);
  const alive: Pod[] = [];
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    if (isFinished(pod)) deletions.push({ name, reason: 'finished' });
    else if (toDelete.has(name)) deletions.push({ name, reason: 'workersToDelete' });
    else alive.push(pod);
  }
  let creations = 0;
  if (alive.length < desired) {
    creations = desired - alive.length;
  } else if (alive.length > desired && (!options.autoscaling || options.clusterSuspended || group.suspend)) {
    // Not-ready pods go first (they serve nothing yet), then the youngest.
    const surplus = [...alive]
      .sort((a, b) => Number(isReady(a)) - Number(isReady(b)) || age(a) - age(b))
      .slice(0, alive.length - desired);
    for (const pod of surplus) deletions.push({ name: pod.metadata?.name ?? '', reason: 'surplus' });
  }
  return { desired, deletions, creations };
}

/** Milliseconds since creation: smaller is younger. */
function age(pod: Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? Date.now() - new Date(created).getTime() : 0;
}
