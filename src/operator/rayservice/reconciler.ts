/**
 * RayService reconcile: keeps one active RayCluster serving `serveConfigV2`, builds a pending cluster
 * when the cluster spec changes (zero-downtime upgrade), switches the services only once every
 * application on the pending cluster is RUNNING, deletes the old cluster after the delay, re-submits
 * the config to a head that restarted, and explains in its conditions why anything is stuck.
 */
import type { Logger } from 'pino';
import type { ServeRestClient } from '../../runtime/rest/client.ts';
import { formatIssues, issuesToText } from '../../schema/issues.ts';
import type { Condition } from '../../schema/kube-common.ts';
import { type RayCluster, rayClusterSpecSchema } from '../../schema/raycluster.ts';
import type { RayService, RayServiceStatus } from '../../schema/rayservice.ts';
import { isAlreadyExists, isNotFound } from '../kube/api-error.ts';
import { canonicalJson } from '../kube/canonical-json.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { mergePatch } from '../kube/merge-patch.ts';
import { type KubeObject, Pods, RayClusters, RayServices, Services } from '../kube/resources.ts';
import type { ReconcileResult } from '../kube/work-queue.ts';
import type { Pod, Service } from '../raycluster/kube-types.ts';
import { LABEL_CLUSTER, LABEL_NODE_TYPE, LABEL_SERVE } from '../raycluster/labels.ts';
import type { CacheView } from '../raycluster/reconciler.ts';
import { isPodReady, setCondition } from '../raycluster/status.ts';
import {
  ANNOTATION_CLUSTER_HASH,
  ANNOTATION_DELETE_AFTER,
  buildHeadService,
  buildServeService,
  buildServiceCluster,
  clusterName,
  LABEL_ORIGIN,
} from './builders.ts';
import { clusterSpecHash, onlyGroupsAppended } from './cluster-spec.ts';
import { type Diagnosis, diagnoseApplications, diagnosePods } from './diagnosis.ts';
import { checkServeConfigV2, describeProblems } from './serve-config-check.ts';
import { type HeadState, ServeConfigSync } from './serve-config-sync.ts';
import { appStatuses, conditionsOf, isReadyApps } from './status.ts';

export interface RayServiceReconcilerDeps {
  client: KubeClient;
  rayServices: CacheView<RayService>;
  clusters: CacheView<RayCluster>;
  pods: CacheView<Pod>;
  services: CacheView<Service>;
  events: EventRecorder;
  log: Logger;
  /** A REST client for a cluster's head (address and token). */
  headClient: (cluster: RayCluster) => Promise<ServeRestClient>;
  busyRequeueMs?: number;
  idleRequeueMs?: number;
}

export class RayServiceReconciler {
  readonly #deps: RayServiceReconcilerDeps;
  readonly #configs: ServeConfigSync;
  /**
   * Deletion times this operator just wrote, by cluster uid: the cache shows the annotation a moment
   * later, and a reconcile in between must not take the old cluster for one nobody needs.
   */
  readonly #deleteAfter = new Map<string, string>();

  constructor(deps: RayServiceReconcilerDeps) {
    this.#deps = deps;
    this.#configs = new ServeConfigSync(deps);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const rs = this.#deps.rayServices.get(key);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const ns = rs.metadata.namespace ?? '';
    const now = new Date();
    const status: RayServiceStatus = structuredClone(rs.status ?? {});
    let conditions = status.conditions ?? [];
    const condition = (c: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>) => {
      conditions = setCondition(conditions, {
        ...c,
        lastTransitionTime: now.toISOString(),
        observedGeneration: rs.metadata.generation,
      });
    };

    // 1. Nothing changes for a spec that cannot work; whatever runs keeps serving.
    const clusterSpec = rayClusterSpecSchema.safeParse(rs.spec.rayClusterConfig);
    const config = checkServeConfigV2(rs.spec.serveConfigV2);
    if (!clusterSpec.success || !config.ok) {
      const message = !clusterSpec.success
        ? issuesToText(
            formatIssues(clusterSpec.error).map((i) => ({ ...i, path: `spec.rayClusterConfig.${i.path}` })),
          )
        : describeProblems(config.ok ? [] : config.problems);
      condition({ type: 'Ready', status: 'False', reason: 'ValidationFailed', message });
      this.#deps.events.event(rs, 'Warning', 'ValidationFailed', message);
      await this.#writeStatus(rs, { ...status, conditions });
      return;
    }
    const configDigest = canonicalJson(config.config);
    const goalHash = clusterSpecHash(rs.spec.rayClusterConfig);
    let active = await this.#cluster(ns, status.activeServiceStatus?.rayClusterName);
    let pending = await this.#cluster(ns, status.pendingServiceStatus?.rayClusterName);

    // 2. Which clusters should exist.
    let upgradeNote: Diagnosis | undefined;
    if (active && active.metadata.annotations?.[ANNOTATION_CLUSTER_HASH] !== goalHash) {
      if (onlyGroupsAppended(active.spec, rs.spec.rayClusterConfig)) {
        await this.#appendGroups(active, rs, goalHash);
      } else if (rs.spec.upgradeStrategy?.type === 'None') {
        upgradeNote = {
          reason: 'UpgradeStrategyNone',
          message: 'rayClusterConfig changed, but upgradeStrategy.type is None: the change is not applied',
        };
        if (pending) pending = await this.#retire(pending, 'upgradeStrategy.type is None');
      } else if (!pending || pending.metadata.annotations?.[ANNOTATION_CLUSTER_HASH] !== goalHash) {
        if (pending) await this.#retire(pending, 'rayClusterConfig changed again');
        pending = await this.#createCluster(rs, goalHash, 'upgrade', active);
      }
    } else if (active && pending) {
      pending = await this.#retire(pending, 'rayClusterConfig is back to the active cluster’s');
    } else if (!active && !pending) {
      pending = await this.#createCluster(rs, goalHash, 'first cluster');
    } else if (!active && pending && pending.metadata.annotations?.[ANNOTATION_CLUSTER_HASH] !== goalHash) {
      await this.#retire(pending, 'rayClusterConfig changed before the first cluster was ready');
      pending = await this.#createCluster(rs, goalHash, 'first cluster');
    }

    // 3. The serve config on each head that can take it.
    let activeState = active ? await this.#configs.sync(rs, active, config.config, configDigest) : undefined;
    let pendingState = pending
      ? await this.#configs.sync(rs, pending, config.config, configDigest)
      : undefined;

    // 4. Traffic moves only when every application on the pending cluster runs and one of its pods
    // can take the serve label: moving the selector earlier would leave the service empty.
    if (
      pending &&
      pendingState?.ok &&
      isReadyApps(pendingState.apps) &&
      this.#podsOf(pending).some((pod) => this.#canServe(rs, pod))
    ) {
      // Its pods carry the serve label before the selector moves, so the service never goes empty.
      await this.#labelServePods(rs, pending, true);
      const old = active;
      [active, activeState] = [pending, pendingState];
      [pending, pendingState] = [undefined, undefined];
      await this.#pointServices(rs, active);
      if (old) await this.#scheduleDeletion(rs, old, now);
      this.#deps.events.event(
        rs,
        'Normal',
        'ClusterPromoted',
        `traffic switched to RayCluster ${active.metadata.name}`,
      );
    } else if (active) {
      await this.#pointServices(rs, active);
    }
    const readyApps = activeState?.ok && isReadyApps(activeState.apps) ? activeState.apps : undefined;
    if (active) await this.#labelServePods(rs, active, readyApps !== undefined);
    await this.#deleteRetiredClusters(rs, active, pending, now);

    // 5. Status.
    const endpoints = active ? this.#serveEndpoints(active) : 0;
    status.activeServiceStatus = active
      ? {
          rayClusterName: active.metadata.name,
          rayClusterStatus: active.status,
          applicationStatuses: appStatuses(activeState?.ok ? activeState.apps : {}),
        }
      : undefined;
    status.pendingServiceStatus = pending
      ? {
          rayClusterName: pending.metadata.name,
          rayClusterStatus: pending.status,
          applicationStatuses: appStatuses(pendingState?.ok ? pendingState.apps : {}),
        }
      : undefined;
    status.numServeEndpoints = endpoints;
    // As KubeRay: Ready needs a pod behind the serve service, not only running applications.
    const ready = readyApps !== undefined && endpoints > 0;
    const stuck = pending ? this.#diagnose(pending, pendingState) : undefined;
    const restartedAt = active ? this.#configs.restartedAt(active.metadata.uid ?? '') : undefined;
    const readyReason = ready
      ? {
          reason: 'RunningAndHealthy',
          message:
            `${Object.keys(readyApps ?? {}).length} applications running` +
            (restartedAt ? `; the head restarted at ${restartedAt} and serveConfigV2 was re-submitted` : ''),
        }
      : (stuck ??
        (readyApps
          ? { reason: 'ZeroServeEndpoints', message: 'applications run, but no ready pod serves them yet' }
          : this.#notReadyReason(active, activeState)));
    condition({ type: 'Ready', status: ready ? 'True' : 'False', ...readyReason });
    condition(
      pending
        ? {
            type: 'UpgradeInProgress',
            status: 'True',
            reason: stuck?.reason ?? 'PendingClusterStarting',
            message:
              stuck?.message ?? `waiting for RayCluster ${pending.metadata.name} to run every application`,
          }
        : {
            type: 'UpgradeInProgress',
            status: 'False',
            reason: upgradeNote?.reason ?? 'NoPendingCluster',
            message: upgradeNote?.message ?? '',
          },
    );
    status.conditions = conditions;
    status.serviceStatus = ready ? 'Running' : undefined;
    status.observedGeneration = rs.metadata.generation;
    await this.#writeStatus(rs, status);
    const settled = ready && !pending;
    return {
      requeueAfterMs: settled ? (this.#deps.idleRequeueMs ?? 10_000) : (this.#deps.busyRequeueMs ?? 2_000),
    };
  }

  /** Drops what this reconciler remembers of a cluster that is gone. */
  forgetCluster(uid: string): void {
    this.#configs.forget(uid);
  }

  /** The named cluster; one the cache has not seen yet (just created) is read from the server. */
  async #cluster(ns: string, name: string | undefined): Promise<RayCluster | undefined> {
    if (!name) return undefined;
    const cluster =
      this.#deps.clusters.get(`${ns}/${name}`) ??
      (await this.#deps.client.get<RayCluster & KubeObject>(RayClusters, ns, name)) ??
      undefined;
    return cluster?.metadata.deletionTimestamp ? undefined : cluster;
  }

  /**
   * Creates the cluster for this spec hash, unless one exists already: a status write the cache has
   * not seen yet must not cost a second cluster (GPU users pay for each).
   */
  async #createCluster(rs: RayService, hash: string, why: string, except?: RayCluster): Promise<RayCluster> {
    const { items } = await this.#deps.client.list<RayCluster & KubeObject>(RayClusters, {
      namespace: rs.metadata.namespace,
      labelSelector: `${LABEL_ORIGIN}=${rs.metadata.name}`,
    });
    const existing = items.find(
      (c) =>
        c.metadata.name !== except?.metadata.name &&
        !c.metadata.deletionTimestamp &&
        c.metadata.annotations?.[ANNOTATION_CLUSTER_HASH] === hash &&
        !c.metadata.annotations?.[ANNOTATION_DELETE_AFTER] &&
        c.metadata.ownerReferences?.some((o) => o.uid === rs.metadata.uid),
    );
    const created =
      existing ??
      (await this.#deps.client.create(
        RayClusters,
        buildServiceCluster(rs, clusterName(rs.metadata.name ?? ''), hash),
      ));
    this.#deps.events.event(
      rs,
      'Normal',
      'CreatedRayCluster',
      `${existing ? 'adopted' : 'created'} RayCluster ${created.metadata.name} (${why})`,
    );
    // Record it at once: the cache has not seen it yet, and the next reconcile must not create another.
    await this.#deps.client.patchStatus(RayServices, rs.metadata.namespace, rs.metadata.name ?? '', 'merge', {
      status: { pendingServiceStatus: { rayClusterName: created.metadata.name } },
    });
    return created;
  }

  async #appendGroups(active: RayCluster, rs: RayService, hash: string): Promise<void> {
    const have = active.spec.workerGroupSpecs?.length ?? 0;
    const added = (rs.spec.rayClusterConfig.workerGroupSpecs ?? []).slice(have);
    await this.#deps.client.patch(
      RayClusters,
      active.metadata.namespace,
      active.metadata.name ?? '',
      'json',
      [
        { op: 'test', path: '/metadata/resourceVersion', value: active.metadata.resourceVersion },
        ...(have === 0 && !active.spec.workerGroupSpecs
          ? [{ op: 'add', path: '/spec/workerGroupSpecs', value: [] }]
          : []),
        ...added.map((group) => ({ op: 'add', path: '/spec/workerGroupSpecs/-', value: group })),
        {
          op: 'replace',
          path: `/metadata/annotations/${ANNOTATION_CLUSTER_HASH.replace('/', '~1')}`,
          value: hash,
        },
      ],
    );
    this.#deps.events.event(
      rs,
      'Normal',
      'UpdatedRayCluster',
      `added worker groups ${added.map((g) => g.groupName).join(', ')} in place`,
    );
  }

  /** Marks a cluster for immediate deletion and forgets it as pending. */
  async #retire(cluster: RayCluster, why: string): Promise<undefined> {
    await this.#deleteCluster(cluster, why);
    return undefined;
  }

  async #pointServices(rs: RayService, active: RayCluster): Promise<void> {
    const clusterName = active.metadata.name ?? '';
    for (const desired of [buildHeadService(rs, clusterName), buildServeService(rs, clusterName)]) {
      const key = `${desired.metadata?.namespace}/${desired.metadata?.name}`;
      const existing = this.#deps.services.get(key);
      if (!existing) {
        try {
          await this.#deps.client.create(Services, desired);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
        continue;
      }
      if (canonicalJson(existing.spec?.selector) !== canonicalJson(desired.spec?.selector)) {
        // Only the selector moves: the ClusterIP, and clients' connections to it, stay.
        await this.#deps.client.patch(
          Services,
          desired.metadata?.namespace,
          desired.metadata?.name ?? '',
          'merge',
          {
            spec: { selector: desired.spec?.selector },
          },
        );
      }
    }
  }

  #podsOf(cluster: RayCluster): Pod[] {
    return this.#deps.pods
      .list(cluster.metadata.namespace)
      .filter((p) => p.metadata?.labels?.[LABEL_CLUSTER] === cluster.metadata.name);
  }

  async #labelServePods(rs: RayService, cluster: RayCluster, appsReady: boolean): Promise<void> {
    for (const pod of this.#podsOf(cluster)) {
      if (pod.metadata?.deletionTimestamp) continue;
      // A pod joins once every application runs, and then stays while it is ready: a config update
      // or a head restart must not empty the serve service.
      const serving = pod.metadata?.labels?.[LABEL_SERVE] === 'true';
      const serve = (appsReady || serving) && this.#canServe(rs, pod);
      const want = serve ? 'true' : 'false';
      if (pod.metadata?.labels?.[LABEL_SERVE] === want) continue;
      try {
        await this.#deps.client.patch(Pods, pod.metadata?.namespace, pod.metadata?.name ?? '', 'merge', {
          metadata: { labels: { [LABEL_SERVE]: want } },
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /** A ready pod of the cluster that the serve service may select. */
  #canServe(rs: RayService, pod: Pod): boolean {
    const isHead = pod.metadata?.labels?.[LABEL_NODE_TYPE] === 'head';
    return (
      !pod.metadata?.deletionTimestamp && isPodReady(pod) && !(isHead && rs.spec.excludeHeadPodFromServeSvc)
    );
  }

  #serveEndpoints(cluster: RayCluster): number {
    return this.#podsOf(cluster).filter((p) => p.metadata?.labels?.[LABEL_SERVE] === 'true' && isPodReady(p))
      .length;
  }

  async #scheduleDeletion(rs: RayService, old: RayCluster, now: Date): Promise<void> {
    const delayS = rs.spec.rayClusterDeletionDelaySeconds ?? 60;
    const at = new Date(now.getTime() + delayS * 1000).toISOString();
    this.#deleteAfter.set(old.metadata.uid ?? '', at);
    await this.#deps.client.patch(RayClusters, old.metadata.namespace, old.metadata.name ?? '', 'merge', {
      metadata: { annotations: { [ANNOTATION_DELETE_AFTER]: at } },
    });
  }

  /** Clusters of this service that are neither active nor pending go once their delay has passed. */
  async #deleteRetiredClusters(
    rs: RayService,
    active?: RayCluster,
    pending?: RayCluster,
    now = new Date(),
  ): Promise<void> {
    const keep = new Set([active?.metadata.name, pending?.metadata.name]);
    for (const cluster of this.#deps.clusters.list(rs.metadata.namespace)) {
      if (cluster.metadata.labels?.[LABEL_ORIGIN] !== rs.metadata.name || keep.has(cluster.metadata.name))
        continue;
      if (cluster.metadata.deletionTimestamp) continue;
      if (!cluster.metadata.ownerReferences?.some((o) => o.uid === rs.metadata.uid)) continue;
      const written = this.#deleteAfter.get(cluster.metadata.uid ?? '');
      const after = cluster.metadata.annotations?.[ANNOTATION_DELETE_AFTER] ?? written;
      if (after && Date.parse(after) > now.getTime()) continue;
      this.#deleteAfter.delete(cluster.metadata.uid ?? '');
      await this.#deleteCluster(cluster, after ? 'deletion delay passed' : 'no longer needed');
    }
  }

  async #deleteCluster(cluster: RayCluster, why: string): Promise<void> {
    try {
      await this.#deps.client.delete(RayClusters, cluster.metadata.namespace, cluster.metadata.name ?? '', {
        propagationPolicy: 'Background',
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.forgetCluster(cluster.metadata.uid ?? '');
    this.#deps.log.info({ raycluster: cluster.metadata.name, why }, 'deleted RayCluster');
  }

  #diagnose(cluster: RayCluster, apps: HeadState | undefined): Diagnosis | undefined {
    const fromPods = diagnosePods(this.#podsOf(cluster));
    if (fromPods) return fromPods;
    if (apps && !apps.ok) return { reason: 'ServeConfigSubmissionFailed', message: apps.message };
    return apps?.ok ? diagnoseApplications(apps.apps) : undefined;
  }

  #notReadyReason(active: RayCluster | undefined, state: HeadState | undefined): Diagnosis {
    if (!active) return { reason: 'Initializing', message: 'waiting for the first RayCluster' };
    const stuck = this.#diagnose(active, state);
    if (stuck) return stuck;
    if (!state) return { reason: 'HeadNotReady', message: `waiting for the head of ${active.metadata.name}` };
    return { reason: 'ApplicationsNotRunning', message: conditionsOf(state.ok ? state.apps : {}) };
  }

  async #writeStatus(rs: RayService, status: RayServiceStatus): Promise<void> {
    const { lastUpdateTime: _, ...before } = rs.status ?? {};
    const patch = mergePatch(before, { ...status, lastUpdateTime: undefined });
    if (patch === undefined) return;
    await this.#deps.client.patchStatus(RayServices, rs.metadata.namespace, rs.metadata.name ?? '', 'merge', {
      status: { ...(patch as object), lastUpdateTime: new Date().toISOString() },
    });
  }
}
