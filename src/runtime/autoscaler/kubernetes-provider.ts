/**
 * The Kubernetes provider: the head's autoscaler reads its own RayCluster for the worker groups,
 * counts the cluster's worker pods, and writes decisions back as one JSON patch on
 * `spec.workerGroupSpecs[i].replicas` and `.scaleStrategy.workersToDelete`; the operator turns those
 * into pods. It never touches pods itself, so the operator stays the only one creating or deleting them.
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { nodeResources } from '../../schema/node-resources.ts';
import {
  RAYLINE_GROUP,
  RAYLINE_VERSION,
  type RayCluster,
  type RayClusterSpec,
  rayClusterSpecSchema,
} from '../../schema/raycluster.ts';
import type { ClusterShape, NodeProvider, ProviderWorker, ScaleDecision, WorkerGroupShape } from './types.ts';

// The operator's pod labels (src/operator/raycluster/labels.ts); runtime/ may not import operator/.
const LABEL_CLUSTER = 'rayline.dev/cluster';
const LABEL_NODE_TYPE = 'rayline.dev/node-type';
const LABEL_GROUP = 'rayline.dev/group';

const defaultIdleTimeoutS = 60;
const fieldManager = 'rayline-autoscaler';

export interface KubernetesProviderOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The RayCluster this head belongs to. */
  clusterName: string;
  log?: Logger;
}

type JsonPatchOp =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'add' | 'replace'; path: string; value: unknown };

export class KubernetesProvider implements NodeProvider {
  readonly namespace: string;
  readonly clusterName: string;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #log: Logger | undefined;

  constructor(options: KubernetesProviderOptions) {
    this.namespace = options.namespace;
    this.clusterName = options.clusterName;
    this.#custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#log = options.log?.child({ component: 'autoscaler-kubernetes', rayCluster: this.name() });
  }

  /**
   * Inside a head pod: the operator sets RAYLINE_NAMESPACE and RAYLINE_CLUSTER_NAME and mounts a
   * service account allowed to get and patch the RayCluster and list pods.
   */
  static fromEnvironment(options: { log?: Logger; env?: NodeJS.ProcessEnv } = {}): KubernetesProvider {
    const env = options.env ?? process.env;
    const namespace = env.RAYLINE_NAMESPACE;
    const clusterName = env.RAYLINE_CLUSTER_NAME;
    if (!namespace || !clusterName) {
      throw new Error(
        'the kubernetes autoscaler provider needs RAYLINE_NAMESPACE and RAYLINE_CLUSTER_NAME ' +
          '(set by the operator on the head pod)',
      );
    }
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromCluster();
    return new KubernetesProvider({ kubeConfig, namespace, clusterName, log: options.log });
  }

  async shape(): Promise<ClusterShape> {
    const { spec } = await this.#read();
    return shapeOf(spec);
  }

  async workers(): Promise<ProviderWorker[]> {
    const pods = await this.#workerPods();
    const workers: ProviderWorker[] = [];
    for (const pod of pods) {
      const id = pod.metadata?.name;
      const group = pod.metadata?.labels?.[LABEL_GROUP];
      if (id && group) workers.push({ id, group, state: workerState(pod) });
    }
    return workers;
  }

  /**
   * One patch for the whole decision, so the operator never sees half of it. Each group's ops are
   * guarded by a `test` of its groupName at the index read just before: if someone reorders
   * workerGroupSpecs in between, the patch fails instead of resizing the wrong group. Names already
   * in workersToDelete are kept, since the operator may not have deleted those pods yet.
   */
  async apply(decision: ScaleDecision): Promise<void> {
    const { raw, spec } = await this.#read();
    const ops: JsonPatchOp[] = [];
    const changes: Record<string, { replicas?: number; workersToDelete?: string[] }> = {};
    for (const group of decision.groups) {
      const i = spec.workerGroupSpecs.findIndex((g) => g.groupName === group.name);
      if (i < 0) {
        this.#log?.warn({ group: group.name }, 'decision names a worker group the RayCluster does not have');
        continue;
      }
      const current = spec.workerGroupSpecs[i];
      const stored = raw.spec.workerGroupSpecs?.[i];
      const base = `/spec/workerGroupSpecs/${i}`;
      const groupOps: JsonPatchOp[] = [];
      // A multi-host replica is numOfHosts workers; a partial one still needs the whole replica.
      const replicas = Math.ceil(group.targetWorkers / current.numOfHosts);
      if (replicas !== current.replicas) {
        groupOps.push({
          op: stored?.replicas === undefined ? 'add' : 'replace',
          path: `${base}/replicas`,
          value: replicas,
        });
        changes[group.name] = { replicas };
      }
      const listed = current.scaleStrategy?.workersToDelete ?? [];
      const fresh = group.remove.filter((id) => !listed.includes(id));
      if (fresh.length > 0) {
        const workersToDelete = [...listed, ...fresh];
        groupOps.push({
          op: stored?.scaleStrategy === undefined ? 'add' : 'replace',
          path: `${base}/scaleStrategy`,
          value: { workersToDelete },
        });
        changes[group.name] = { ...changes[group.name], workersToDelete };
      }
      if (groupOps.length > 0)
        ops.push({ op: 'test', path: `${base}/groupName`, value: group.name }, ...groupOps);
    }
    if (ops.length === 0) {
      this.#log?.debug('decision matches the RayCluster; nothing to patch');
      return;
    }
    await this.#patch(ops, 'scaling');
    this.#log?.info({ changes }, 'patched worker groups');
  }

  /** Clears workersToDelete of groups whose listed pods are all gone, so that names can be reused. */
  async reconcile(): Promise<void> {
    const [{ spec }, pods] = await Promise.all([this.#read(), this.#workerPods()]);
    const existing = new Set(pods.map((p) => p.metadata?.name));
    const ops: JsonPatchOp[] = [];
    const cleared: string[] = [];
    spec.workerGroupSpecs.forEach((group, i) => {
      const listed = group.scaleStrategy?.workersToDelete ?? [];
      if (listed.length === 0 || listed.some((name) => existing.has(name))) return;
      const base = `/spec/workerGroupSpecs/${i}`;
      ops.push(
        { op: 'test', path: `${base}/groupName`, value: group.groupName },
        { op: 'replace', path: `${base}/scaleStrategy/workersToDelete`, value: [] },
      );
      cleared.push(group.groupName);
    });
    if (ops.length === 0) return;
    await this.#patch(ops, 'clearing workersToDelete');
    this.#log?.info({ groups: cleared }, 'cleared workersToDelete: those pods are gone');
  }

  name(): string {
    return `${this.namespace}/${this.clusterName}`;
  }

  async #read(): Promise<{ raw: RayCluster; spec: RayClusterSpec }> {
    let raw: RayCluster;
    try {
      raw = (await this.#custom.getNamespacedCustomObject({
        group: RAYLINE_GROUP,
        version: RAYLINE_VERSION,
        namespace: this.namespace,
        plural: 'rayclusters',
        name: this.clusterName,
      })) as RayCluster;
    } catch (err) {
      throw new Error(`reading RayCluster ${this.name()}: ${describe(err)}`, { cause: err });
    }
    const parsed = rayClusterSpecSchema.safeParse(raw.spec);
    if (!parsed.success) {
      throw new Error(`RayCluster ${this.name()} has an invalid spec:\n${z.prettifyError(parsed.error)}`);
    }
    return { raw, spec: parsed.data };
  }

  async #workerPods(): Promise<V1Pod[]> {
    try {
      const list = await this.#core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: `${LABEL_CLUSTER}=${this.clusterName},${LABEL_NODE_TYPE}=worker`,
      });
      return list.items;
    } catch (err) {
      throw new Error(`listing worker pods of RayCluster ${this.name()}: ${describe(err)}`, { cause: err });
    }
  }

  async #patch(ops: JsonPatchOp[], what: string): Promise<void> {
    try {
      await this.#custom.patchNamespacedCustomObject(
        {
          group: RAYLINE_GROUP,
          version: RAYLINE_VERSION,
          namespace: this.namespace,
          plural: 'rayclusters',
          name: this.clusterName,
          body: ops,
          fieldManager,
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    } catch (err) {
      // The API server answers a failed `test` op with a bare 422: say what it most likely means.
      // Nothing was written; the next round reads the cluster again.
      const hint =
        err instanceof ApiException && err.code === 422
          ? ' (worker groups reordered or renamed since they were read?)'
          : '';
      throw new Error(`patching RayCluster ${this.name()} (${what}): ${describe(err)}${hint}`, {
        cause: err,
      });
    }
  }
}

/** The autoscaler's view of a RayCluster spec: groups sized by what their pods register with. */
export function shapeOf(spec: RayClusterSpec): ClusterShape {
  const groups = spec.workerGroupSpecs.map((group): WorkerGroupShape => {
    // A suspended group or cluster runs no workers: the planner must not ask for any.
    const suspended = spec.suspend === true || group.suspend === true;
    const shape: WorkerGroupShape = {
      name: group.groupName,
      resourcesPerWorker: nodeResources(group.template.spec.containers[0], group.rayStartParams),
      minWorkers: suspended ? 0 : group.minReplicas * group.numOfHosts,
      maxWorkers: suspended ? 0 : group.maxReplicas * group.numOfHosts,
    };
    if (group.idleTimeoutSeconds !== undefined) shape.idleTimeoutS = group.idleTimeoutSeconds;
    return shape;
  });
  return {
    groups,
    idleTimeoutS: spec.autoscalerOptions?.idleTimeoutSeconds ?? defaultIdleTimeoutS,
    upscalingMode: spec.autoscalerOptions?.upscalingMode ?? 'Default',
  };
}

function workerState(pod: V1Pod): ProviderWorker['state'] {
  const phase = pod.status?.phase;
  if (pod.metadata?.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed') return 'terminating';
  return phase === 'Running' ? 'running' : 'pending';
}

function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body;
    const message =
      typeof body === 'string'
        ? (safeJson(body)?.message ?? body)
        : ((body as { message?: string } | undefined)?.message ?? JSON.stringify(body));
    return `HTTP ${err.code}: ${message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(text: string): { message?: string } | undefined {
  try {
    return JSON.parse(text) as { message?: string };
  } catch {
    return undefined;
  }
}
