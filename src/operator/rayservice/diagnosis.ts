/**
 * Why a cluster is not becoming ready, in the words Kubernetes or the head used: an unschedulable
 * pod, an image that cannot be pulled, a crashing container, an application that failed to deploy.
 * KubeRay users wait on "Initializing" forever; this is what the RayService's conditions say instead.
 */
import type { ApplicationDetails } from '../../runtime/rest/client.ts';
import type { Pod } from '../raycluster/kube-types.ts';

export interface Diagnosis {
  reason: string;
  message: string;
}

const stuckWaitingReasons = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export function diagnosePods(pods: readonly Pod[]): Diagnosis | undefined {
  const unschedulable = diagnoseUnschedulable(pods);
  if (unschedulable) return unschedulable;
  for (const pod of pods) {
    const name = pod.metadata?.name;
    for (const container of [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]) {
      const waiting = container.state?.waiting;
      if (waiting?.reason && stuckWaitingReasons.has(waiting.reason)) {
        return {
          reason: waiting.reason,
          message: `pod ${name} container ${container.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
        };
      }
    }
    if (pod.status?.phase === 'Failed') {
      return {
        reason: 'PodFailed',
        message: `pod ${name} failed: ${pod.status.message ?? pod.status.reason ?? ''}`.trim(),
      };
    }
  }
  return undefined;
}

/**
 * Every pod the scheduler cannot place, grouped by the scheduler's message: a head short of CPU and
 * workers short of `nvidia.com/gpu` are two problems, and the user needs to see both.
 */
function diagnoseUnschedulable(pods: readonly Pod[]): Diagnosis | undefined {
  const byMessage = new Map<string, string[]>();
  for (const pod of pods) {
    const condition = pod.status?.conditions?.find(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    );
    if (!condition) continue;
    const message = condition.message ?? '';
    byMessage.set(message, [...(byMessage.get(message) ?? []), pod.metadata?.name ?? '']);
  }
  if (byMessage.size === 0) return undefined;
  const parts = [...byMessage].map(([message, names]) =>
    `${names.length === 1 ? 'pod' : 'pods'} ${names.sort().join(', ')} cannot be scheduled: ${message}`.trim(),
  );
  return { reason: 'PodUnschedulable', message: parts.join('; ') };
}

export function diagnoseApplications(apps: Record<string, ApplicationDetails>): Diagnosis | undefined {
  for (const [name, app] of Object.entries(apps)) {
    if (app.status === 'DEPLOY_FAILED' || app.status === 'UNHEALTHY') {
      return {
        reason: `Application${app.status === 'DEPLOY_FAILED' ? 'DeployFailed' : 'Unhealthy'}`,
        message: `application ${name}: ${app.message}`,
      };
    }
  }
  return undefined;
}
