/**
 * A RayCluster's status from what exists: worker counts, the resources the cluster asks for, the
 * head's addresses and the conditions KubeRay users read (HeadPodReady, RayClusterProvisioned,
 * ReplicaFailure). Pure, so the reconciler only decides whether it changed.
 */
import type { Condition } from '../../schema/kube-common.ts';
import { formatBytes, parseQuantity } from '../../schema/quantity.ts';
import type { RayClusterSpec, RayClusterStatus } from '../../schema/raycluster.ts';
import type { Pod, Service } from './kube-types.ts';
import { LABEL_GROUP, LABEL_NODE_TYPE, ports } from './labels.ts';
import { desiredWorkers } from './worker-plan.ts';

const INT32_MAX = 2147483647;

export function isPodReady(pod: Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    (pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false)
  );
}

/** Replaces the condition of the same type, keeping its transition time when its status holds. */
export function setCondition(conditions: readonly Condition[], next: Condition): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const kept =
    previous && previous.status === next.status ? previous.lastTransitionTime : next.lastTransitionTime;
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime: kept }];
}

interface Totals {
  cpu: number;
  memoryBytes: number;
  gpus: number;
}

function podTemplateTotals(
  containers: readonly { resources?: { limits?: object; requests?: object } }[],
): Totals {
  const totals: Totals = { cpu: 0, memoryBytes: 0, gpus: 0 };
  for (const container of containers) {
    const limits = (container.resources?.limits ?? {}) as Record<string, string | number>;
    const requests = (container.resources?.requests ?? {}) as Record<string, string | number>;
    const get = (key: string) => parseQuantity(limits[key] ?? requests[key] ?? 0) ?? 0;
    totals.cpu += get('cpu');
    totals.memoryBytes += get('memory');
    for (const key of Object.keys({ ...requests, ...limits }))
      if (key.endsWith('gpu')) totals.gpus += get(key);
  }
  return totals;
}

function formatCpu(cpu: number): string {
  return Number.isInteger(cpu) ? String(cpu) : `${Math.round(cpu * 1000)}m`;
}

export interface StatusInput {
  spec: RayClusterSpec;
  generation: number | undefined;
  previous: RayClusterStatus | undefined;
  pods: readonly Pod[];
  headService: Service | undefined;
  /** The last create or delete failure of this reconcile, if any. */
  failure?: { reason: string; message: string };
  now: string;
}

export function computeClusterStatus(input: StatusInput): RayClusterStatus {
  const { spec, pods, now } = input;
  const suspended = spec.suspend === true;
  // Pods on their way out count for nothing; of several heads (an old one still finishing), the ready one.
  const live = pods.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded',
  );
  const heads = live.filter((p) => p.metadata?.labels?.[LABEL_NODE_TYPE] === 'head');
  const head = heads.find(isPodReady) ?? heads[0];
  const workers = live.filter((p) => p.metadata?.labels?.[LABEL_NODE_TYPE] === 'worker');
  const groups = new Set(spec.workerGroupSpecs.map((g) => g.groupName));
  const ourWorkers = workers.filter((p) => groups.has(p.metadata?.labels?.[LABEL_GROUP] ?? ''));

  let desired = 0;
  let min = 0;
  let max = 0;
  const totals = suspended
    ? { cpu: 0, memoryBytes: 0, gpus: 0 }
    : podTemplateTotals(spec.headGroupSpec.template.spec.containers);
  for (const group of spec.workerGroupSpecs) {
    const count = desiredWorkers(group, suspended);
    desired += count;
    min += group.minReplicas * group.numOfHosts;
    max = Math.min(INT32_MAX, max + group.maxReplicas * group.numOfHosts);
    const perPod = podTemplateTotals(group.template.spec.containers);
    totals.cpu += perPod.cpu * count;
    totals.memoryBytes += perPod.memoryBytes * count;
    totals.gpus += perPod.gpus * count;
  }
  const ready = ourWorkers.filter(isPodReady).length;
  const available = ourWorkers.filter((p) => p.status?.phase === 'Running').length;
  const headReady = head !== undefined && isPodReady(head);
  const allReady = headReady && ready >= desired;

  let conditions = input.previous?.conditions ?? [];
  conditions = setCondition(conditions, {
    type: 'HeadPodReady',
    status: headReady ? 'True' : 'False',
    reason: headReady ? 'HeadPodRunningAndReady' : head ? 'HeadPodNotReady' : 'HeadPodNotFound',
    message: head
      ? `head pod ${head.metadata?.name} is ${head.status?.phase ?? 'Pending'}`
      : 'no head pod yet',
    lastTransitionTime: now,
    observedGeneration: input.generation,
  });
  const provisioned = conditions.find((c) => c.type === 'RayClusterProvisioned');
  // Provisioned is a milestone: once every pod was ready, losing one later does not take it back.
  if (provisioned?.status !== 'True') {
    conditions = setCondition(conditions, {
      type: 'RayClusterProvisioned',
      status: allReady ? 'True' : 'False',
      reason: allReady ? 'AllPodRunningAndReadyFirstTime' : 'RayClusterPodsProvisioning',
      message: allReady ? 'all pods are running and ready' : `${ready} of ${desired} workers ready`,
      lastTransitionTime: now,
      observedGeneration: input.generation,
    });
  }
  conditions = setCondition(conditions, {
    type: 'ReplicaFailure',
    status: input.failure ? 'True' : 'False',
    reason: input.failure?.reason ?? 'NoFailure',
    message: input.failure?.message ?? '',
    lastTransitionTime: now,
    observedGeneration: input.generation,
  });

  const serviceIP = input.headService?.spec?.clusterIP;
  return {
    state: suspended ? 'suspended' : allReady ? 'ready' : (input.previous?.state ?? undefined),
    desiredWorkerReplicas: desired,
    readyWorkerReplicas: ready,
    availableWorkerReplicas: available,
    minWorkerReplicas: min,
    maxWorkerReplicas: max,
    desiredCPU: formatCpu(totals.cpu),
    desiredMemory: formatBytes(totals.memoryBytes),
    desiredGPU: String(totals.gpus),
    endpoints: {
      'gcs-server': String(ports.gcs),
      dashboard: String(ports.dashboard),
      serve: String(ports.serve),
      metrics: String(ports.metrics),
    },
    head: {
      podName: head?.metadata?.name,
      podIP: head?.status?.podIP,
      serviceName: input.headService?.metadata?.name,
      // A headless head service has no cluster IP: KubeRay reports the head pod's IP instead.
      serviceIP: serviceIP && serviceIP !== 'None' ? serviceIP : head?.status?.podIP,
    },
    observedGeneration: input.generation,
    conditions,
    lastUpdateTime: input.previous?.lastUpdateTime ?? now,
  };
}
