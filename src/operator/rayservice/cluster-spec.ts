/**
 * How a RayService decides what a change to its rayClusterConfig means. Fields the autoscaler owns
 * (replicas, minReplicas, maxReplicas, workersToDelete) and suspend are left out of the hash, so an
 * autoscaler patch never looks like an upgrade; appending worker groups updates the cluster in place;
 * any other change needs a new cluster.
 */
import { createHash } from 'node:crypto';
import type { RayClusterSpecInput } from '../../schema/raycluster.ts';
import { canonicalJson } from '../kube/canonical-json.ts';

type Spec = RayClusterSpecInput;
type Group = NonNullable<Spec['workerGroupSpecs']>[number];

function withoutScaleFields(group: Group): Group {
  const {
    replicas: _r,
    minReplicas: _min,
    maxReplicas: _max,
    scaleStrategy: _s,
    suspend: _su,
    ...rest
  } = group;
  return rest as Group;
}

function digest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url').slice(0, 22);
}

export function clusterSpecHash(spec: Spec): string {
  const { suspend: _s, ...rest } = spec;
  return digest({ ...rest, workerGroupSpecs: (spec.workerGroupSpecs ?? []).map(withoutScaleFields) });
}

/** True when `next` equals `current` plus worker groups appended at the end (KubeRay updates those in place). */
export function onlyGroupsAppended(current: Spec, next: Spec): boolean {
  const currentGroups = current.workerGroupSpecs ?? [];
  const nextGroups = next.workerGroupSpecs ?? [];
  if (nextGroups.length <= currentGroups.length) return false;
  return (
    clusterSpecHash({ ...next, workerGroupSpecs: nextGroups.slice(0, currentGroups.length) }) ===
    clusterSpecHash(current)
  );
}
