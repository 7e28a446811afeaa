/**
 * RayCluster reconcile: level-triggered, reading the informer caches and converging the cluster's
 * head pod, worker pods, head service, token secret and autoscaler RBAC onto its spec, then writing
 * status. Expectations keep a lagging pod cache from creating or deleting a pod twice.
 */
import type { Logger } from 'pino';
import { formatIssues, issuesToText } from '../../schema/issues.ts';
import {
  type RayCluster,
  type RayClusterSpec,
  type RayClusterStatus,
  rayClusterSpecSchema,
} from '../../schema/raycluster.ts';
import { isAlreadyExists, isNotFound } from '../kube/api-error.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Expectations } from '../kube/expectations.ts';
import { mergePatch } from '../kube/merge-patch.ts';
import {
  type KubeObject,
  NetworkPolicies,
  Pods,
  RayClusters,
  type ResourceType,
  RoleBindings,
  Roles,
  Secrets,
  ServiceAccounts,
  Services,
} from '../kube/resources.ts';
import type { ReconcileResult } from '../kube/work-queue.ts';
import type { Pod, Service } from './kube-types.ts';
import { headServiceName, LABEL_CLUSTER, LABEL_GROUP, LABEL_NODE_TYPE } from './labels.ts';
import { type BuildOptions, buildHeadPod, buildWorkerPod, type ClusterRef } from './pod-builder.ts';
import {
  buildAutoscalerRbac,
  buildDashboardNetworkPolicy,
  buildHeadService,
  buildTokenSecret,
} from './resources-builder.ts';
import { computeClusterStatus } from './status.ts';
import { planWorkers } from './worker-plan.ts';

/** Read-only views of informer caches, keyed `namespace/name`. */
export interface CacheView<T> {
  get(key: string): T | undefined;
  list(namespace?: string): readonly T[];
}

export interface RayClusterReconcilerDeps {
  client: KubeClient;
  clusters: CacheView<RayCluster>;
  pods: CacheView<Pod>;
  services: CacheView<Service>;
  expectations: Expectations;
  events: EventRecorder;
  log: Logger;
  build: BuildOptions;
  /** When set, each cluster gets a NetworkPolicy admitting its REST API only from this namespace. */
  operatorNamespace?: string;
  /** Pause between checks while something is converging. */
  busyRequeueMs?: number;
  /** Safety net resync of a settled cluster. */
  idleRequeueMs?: number;
}

interface Failure {
  reason: string;
  message: string;
}

export class RayClusterReconciler {
  readonly #deps: RayClusterReconcilerDeps;
  /** Cluster uids whose secret and RBAC exist: created once, owned (and collected) with the cluster. */
  readonly #ensured = new Map<string, boolean>();

  constructor(deps: RayClusterReconcilerDeps) {
    this.#deps = deps;
  }

  /** Drops what this reconciler remembers of a cluster that is gone. */
  forgetCluster(uid: string): void {
    this.#ensured.delete(uid);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { clusters, expectations, log } = this.#deps;
    const cluster = clusters.get(key);
    if (!cluster) {
      expectations.delete(key);
      return;
    }
    const meta = cluster.metadata;
    if (meta.deletionTimestamp) return; // owner references remove pods and services
    const ref: ClusterRef = { name: meta.name ?? '', namespace: meta.namespace ?? '', uid: meta.uid ?? '' };
    const parsed = rayClusterSpecSchema.safeParse(cluster.spec);
    if (!parsed.success) {
      const message = `invalid spec: ${issuesToText(formatIssues(parsed.error).map((i) => ({ ...i, path: `spec.${i.path}` })))}`;
      this.#deps.events.event(cluster, 'Warning', 'InvalidSpec', message);
      await this.#writeStatus(cluster, { ...cluster.status, state: 'failed', reason: message });
      return;
    }
    const spec = parsed.data;
    const clusterLog = log.child({ raycluster: key });
    let failure: Failure | undefined;
    let acted = false;
    try {
      acted = (await this.#ensureSupporting(cluster, ref, spec)) || acted;
      if (expectations.satisfied(key)) {
        acted = (await this.#reconcileHead(cluster, ref, spec, key)) || acted;
        acted = (await this.#reconcileWorkers(cluster, ref, spec, key)) || acted;
      } else {
        acted = true;
        clusterLog.debug({ pending: expectations.pending(key) }, 'waiting for the pod cache to catch up');
      }
    } catch (err) {
      failure = this.#failure(err);
      clusterLog.warn({ err }, 'reconcile failed');
    }
    const pods = this.#podsOf(ref);
    const status = computeClusterStatus({
      spec,
      generation: meta.generation,
      previous: cluster.status,
      pods,
      headService: this.#deps.services.get(`${ref.namespace}/${headServiceName(ref.name)}`),
      failure,
      now: new Date().toISOString(),
    });
    await this.#writeStatus(cluster, status);
    if (failure) throw new Error(`${key}: ${failure.message}`);
    const settled = !acted && status.state === 'ready';
    return {
      requeueAfterMs: settled ? (this.#deps.idleRequeueMs ?? 60_000) : (this.#deps.busyRequeueMs ?? 2_000),
    };
  }

  #podsOf(ref: ClusterRef): Pod[] {
    return this.#deps.pods
      .list(ref.namespace)
      .filter((p) => p.metadata?.labels?.[LABEL_CLUSTER] === ref.name);
  }

  async #ensureSupporting(cluster: RayCluster, ref: ClusterRef, spec: RayClusterSpec): Promise<boolean> {
    let acted = false;
    if (!this.#deps.services.get(`${ref.namespace}/${headServiceName(ref.name)}`)) {
      acted = (await this.#createIfMissing(cluster, Services, buildHeadService(ref, spec))) || acted;
    }
    const autoscaling = spec.enableInTreeAutoscaling === true;
    if (this.#ensured.get(ref.uid) === autoscaling) return acted;
    acted = (await this.#createIfMissing(cluster, Secrets, buildTokenSecret(ref), false)) || acted;
    if (spec.enableInTreeAutoscaling) {
      const [account, role, binding] = buildAutoscalerRbac(ref);
      acted = (await this.#createIfMissing(cluster, ServiceAccounts, account)) || acted;
      acted = (await this.#createIfMissing(cluster, Roles, role)) || acted;
      acted = (await this.#createIfMissing(cluster, RoleBindings, binding)) || acted;
    }
    if (this.#deps.operatorNamespace) {
      const policy = buildDashboardNetworkPolicy(ref, this.#deps.operatorNamespace);
      acted = (await this.#createIfMissing(cluster, NetworkPolicies, policy)) || acted;
    }
    this.#ensured.set(ref.uid, autoscaling);
    return acted;
  }

  /** Creates obj unless it exists; an existing secret keeps its token. */
  async #createIfMissing(
    cluster: RayCluster,
    resource: ResourceType,
    obj: KubeObject,
    announce = true,
  ): Promise<boolean> {
    try {
      await this.#deps.client.create(resource, obj);
    } catch (err) {
      if (isAlreadyExists(err)) return false;
      throw err;
    }
    if (announce) {
      this.#deps.events.event(
        cluster,
        'Normal',
        `Created${resource.kind}`,
        `created ${resource.kind} ${obj.metadata?.name}`,
      );
    }
    return true;
  }

  async #reconcileHead(
    cluster: RayCluster,
    ref: ClusterRef,
    spec: RayClusterSpec,
    key: string,
  ): Promise<boolean> {
    const heads = this.#podsOf(ref).filter(
      (p) => p.metadata?.labels?.[LABEL_NODE_TYPE] === 'head' && !p.metadata.deletionTimestamp,
    );
    const finished = heads.filter((p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded');
    for (const pod of finished)
      await this.#deletePod(cluster, key, pod, `head pod ${pod.metadata?.name} is ${pod.status?.phase}`);
    const alive = heads.length - finished.length;
    if (spec.suspend) {
      for (const pod of heads.filter((p) => !finished.includes(p)))
        await this.#deletePod(cluster, key, pod, 'cluster suspended');
      return finished.length > 0 || alive > 0;
    }
    if (alive > 0) return finished.length > 0;
    await this.#createPod(cluster, key, buildHeadPod(ref, spec, this.#deps.build), 'FailedCreateHeadPod');
    return true;
  }

  async #reconcileWorkers(
    cluster: RayCluster,
    ref: ClusterRef,
    spec: RayClusterSpec,
    key: string,
  ): Promise<boolean> {
    const workers = this.#podsOf(ref).filter((p) => p.metadata?.labels?.[LABEL_NODE_TYPE] === 'worker');
    let acted = false;
    for (const group of spec.workerGroupSpecs) {
      const pods = workers.filter(
        (p) => p.metadata?.labels?.[LABEL_GROUP] === group.groupName && !p.metadata?.deletionTimestamp,
      );
      const plan = planWorkers(group, pods, {
        autoscaling: spec.enableInTreeAutoscaling === true,
        clusterSuspended: spec.suspend === true,
      });
      for (const deletion of plan.deletions) {
        const pod = pods.find((p) => p.metadata?.name === deletion.name);
        if (pod)
          await this.#deletePod(
            cluster,
            key,
            pod,
            `worker ${deletion.name} of ${group.groupName}: ${deletion.reason}`,
          );
      }
      for (let i = 0; i < plan.creations; i++) {
        await this.#createPod(
          cluster,
          key,
          buildWorkerPod(ref, group, this.#deps.build),
          'FailedCreateWorkerPod',
        );
      }
      acted = acted || plan.deletions.length > 0 || plan.creations > 0;
    }
    // Pods of groups that were removed from the spec.
    const groups = new Set(spec.workerGroupSpecs.map((g) => g.groupName));
    for (const pod of workers.filter(
      (p) => !groups.has(p.metadata?.labels?.[LABEL_GROUP] ?? '') && !p.metadata?.deletionTimestamp,
    )) {
      await this.#deletePod(
        cluster,
        key,
        pod,
        `worker group ${pod.metadata?.labels?.[LABEL_GROUP]} was removed`,
      );
      acted = true;
    }
    return acted;
  }

  async #createPod(cluster: RayCluster, key: string, pod: Pod, failReason: string): Promise<void> {
    let created: Pod;
    try {
      created = await this.#deps.client.create(Pods, pod);
    } catch (err) {
      this.#deps.events.event(
        cluster,
        'Warning',
        failReason,
        `failed to create pod: ${(err as Error).message}`,
      );
      throw Object.assign(err as Error, { rayReason: failReason });
    }
    const name = created.metadata?.name ?? '';
    this.#deps.expectations.expectCreations(key, [name]);
    this.#deps.events.event(
      cluster,
      'Normal',
      'CreatedPod',
      `created ${pod.metadata?.labels?.[LABEL_NODE_TYPE]} pod ${name}`,
    );
  }

  async #deletePod(cluster: RayCluster, key: string, pod: Pod, why: string): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid;
    this.#deps.expectations.expectDeletions(key, [{ name, uid }]);
    try {
      await this.#deps.client.delete(
        Pods,
        pod.metadata?.namespace,
        name,
        uid ? { preconditions: { uid } } : {},
      );
    } catch (err) {
      this.#deps.expectations.deletionFailed(key, name);
      if (isNotFound(err)) return;
      this.#deps.events.event(
        cluster,
        'Warning',
        'FailedDeletePod',
        `failed to delete pod ${name}: ${(err as Error).message}`,
      );
      throw Object.assign(err as Error, { rayReason: 'FailedDeletePod' });
    }
    this.#deps.events.event(cluster, 'Normal', 'DeletedPod', `deleted pod ${name} (${why})`);
  }

  #failure(err: unknown): Failure {
    const reason = (err as { rayReason?: string }).rayReason ?? 'ReconcileError';
    return { reason, message: err instanceof Error ? err.message : String(err) };
  }

  async #writeStatus(cluster: RayCluster, status: RayClusterStatus): Promise<void> {
    const { lastUpdateTime: _, ...before } = cluster.status ?? {};
    const patch = mergePatch(before, { ...status, lastUpdateTime: undefined });
    if (patch === undefined) return;
    await this.#deps.client.patchStatus(
      RayClusters,
      cluster.metadata.namespace,
      cluster.metadata.name ?? '',
      'merge',
      {
        status: { ...(patch as object), lastUpdateTime: new Date().toISOString() },
      },
    );
  }
}
