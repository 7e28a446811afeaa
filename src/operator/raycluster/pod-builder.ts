/**
 * Builds head and worker pods from a RayCluster's templates: identity labels, owner reference,
 * `rayline start` arguments derived from the container's resources, env, ports and probes. Pure:
 * the reconciler decides when to create them.
 */
import type { ContainerSpec, OwnerReference, PodTemplate } from '../../schema/kube-common.ts';
import { resourceFlags, startArguments } from '../../schema/node-resources.ts';
import { RAYLINE_API_VERSION, type RayClusterSpec, type WorkerGroupSpec } from '../../schema/raycluster.ts';
import type { Container, EnvVar, Pod, Probe } from './kube-types.ts';
import {
  autoscalerAccountName,
  HEAD_GROUP,
  headServiceName,
  type NodeType,
  nodeLabels,
  ports,
  tokenSecretName,
} from './labels.ts';

export interface ClusterRef {
  name: string;
  namespace: string;
  uid: string;
}

export interface BuildOptions {
  /** DNS suffix of services in this Kubernetes cluster. */
  clusterDomain: string;
}

export const defaultBuildOptions: BuildOptions = { clusterDomain: 'cluster.local' };

export function clusterOwnerReference(cluster: ClusterRef): OwnerReference {
  return {
    apiVersion: RAYLINE_API_VERSION,
    kind: 'RayCluster',
    name: cluster.name,
    uid: cluster.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function headAddress(cluster: ClusterRef, options: BuildOptions): string {
  return `${headServiceName(cluster.name)}.${cluster.namespace}.svc.${options.clusterDomain}:${ports.gcs}`;
}

export function buildHeadPod(
  cluster: ClusterRef,
  spec: RayClusterSpec,
  options: BuildOptions = defaultBuildOptions,
): Pod {
  const head = spec.headGroupSpec;
  const derived: Record<string, string> = { 'dashboard-host': '0.0.0.0' };
  if (spec.enableInTreeAutoscaling) derived['autoscaling-provider'] = 'kubernetes';
  const pod = buildPod(cluster, 'head', HEAD_GROUP, head.template, options, (container) =>
    startArguments(['--head'], { ...derived, ...resourceFlags(container) }, head.rayStartParams),
  );
  if (spec.enableInTreeAutoscaling && pod.spec && !pod.spec.serviceAccountName) {
    // The head's autoscaler reads and patches its RayCluster: the one pod that needs an API token.
    pod.spec.serviceAccountName = autoscalerAccountName(cluster.name);
    pod.spec.automountServiceAccountToken = true;
  }
  return pod;
}

export function buildWorkerPod(
  cluster: ClusterRef,
  group: WorkerGroupSpec,
  options: BuildOptions = defaultBuildOptions,
): Pod {
  return buildPod(cluster, 'worker', group.groupName, group.template, options, (container) =>
    startArguments(
      [`--address=${headAddress(cluster, options)}`],
      resourceFlags(container),
      group.rayStartParams,
    ),
  );
}

function buildPod(
  cluster: ClusterRef,
  nodeType: NodeType,
  group: string,
  template: PodTemplate,
  options: BuildOptions,
  args: (container: ContainerSpec) => string[],
): Pod {
  const copy = structuredClone(template) as PodTemplate;
  const [first, ...rest] = copy.spec.containers;
  if (!first) throw new Error('pod template has no containers');
  const container = first as Container;
  if (!container.command && !container.args) container.args = args(first);
  container.env = mergeByName(container.env, nodeEnv(cluster, nodeType, group, options));
  container.ports = mergePorts(container.ports, nodeType);
  container.livenessProbe ??= probe(nodeType, 120);
  container.readinessProbe ??= probe(nodeType, 10);
  container.securityContext ??= { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  const generateName = nodeType === 'head' ? `${cluster.name}-head-` : `${cluster.name}-${group}-worker-`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...copy.metadata,
      generateName,
      namespace: cluster.namespace,
      labels: { ...copy.metadata?.labels, ...nodeLabels(cluster.name, nodeType, group) },
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    spec: {
      // User code runs here: no API token unless the template asks, and not root unless it says so.
      automountServiceAccountToken: false,
      ...(copy.spec as object),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        ...(copy.spec.securityContext as object | undefined),
      },
      containers: [container, ...(rest as Container[])],
    },
  } as Pod;
}

function nodeEnv(cluster: ClusterRef, nodeType: NodeType, group: string, options: BuildOptions): EnvVar[] {
  const field = (fieldPath: string): EnvVar['valueFrom'] => ({ fieldRef: { fieldPath } });
  return [
    { name: 'RAYLINE_CLUSTER_NAME', value: cluster.name },
    { name: 'RAYLINE_NAMESPACE', valueFrom: field('metadata.namespace') },
    { name: 'RAYLINE_POD_NAME', valueFrom: field('metadata.name') },
    { name: 'RAYLINE_POD_IP', valueFrom: field('status.podIP') },
    { name: 'RAYLINE_NODE_TYPE', value: nodeType },
    { name: 'RAYLINE_GROUP', value: group },
    { name: 'RAYLINE_HEAD_ADDRESS', value: headAddress(cluster, options) },
    {
      name: 'RAYLINE_API_TOKEN',
      valueFrom: { secretKeyRef: { name: tokenSecretName(cluster.name), key: 'token' } },
    },
  ];
}

/** The user's entries win: a template that sets a variable keeps its value. */
function mergeByName(user: EnvVar[] | undefined, ours: EnvVar[]): EnvVar[] {
  const names = new Set((user ?? []).map((e) => e.name));
  return [...(user ?? []), ...ours.filter((e) => !names.has(e.name))];
}

function mergePorts(user: Container['ports'], nodeType: NodeType): Container['ports'] {
  const ours =
    nodeType === 'head'
      ? [
          { name: 'gcs-server', containerPort: ports.gcs },
          { name: 'dashboard', containerPort: ports.dashboard },
          { name: 'serve', containerPort: ports.serve },
          { name: 'metrics', containerPort: ports.metrics },
        ]
      : [
          { name: 'serve', containerPort: ports.serve },
          { name: 'metrics', containerPort: ports.metrics },
        ];
  const taken = new Set((user ?? []).flatMap((p) => [p.name, p.containerPort]));
  return [...(user ?? []), ...ours.filter((p) => !taken.has(p.name) && !taken.has(p.containerPort))];
}

/** Heads answer on the REST API; every node answers on its metrics port. */
function probe(nodeType: NodeType, failureThreshold: number): Probe {
  const port = nodeType === 'head' ? ports.dashboard : ports.metrics;
  return {
    httpGet: { path: '/-/healthz', port },
    initialDelaySeconds: 10,
    periodSeconds: 5,
    timeoutSeconds: 2,
    failureThreshold,
  };
}
