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
  for (const pod of pods) {
    const name = pod.metadata?.name;
    const unschedulable = pod.status?.conditions?.find(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    );
    if (unschedulable) {
      return {
        reason: 'PodUnschedulable',
        message: `pod ${name} cannot be scheduled: ${unschedulable.message ?? ''}`.trim(),
      };
    }
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
