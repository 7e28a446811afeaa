/**
 * The head service, the token secret, the autoscaler's RBAC and the optional dashboard network
 * policy of a RayCluster. Pure builders, like the pod builder.
 */
import { randomBytes } from 'node:crypto';
import { RAYLINE_GROUP, type RayClusterSpec } from '../../schema/raycluster.ts';
import type { NetworkPolicy, Role, RoleBinding, Secret, Service, ServiceAccount } from './kube-types.ts';
import {
  APP_NAME,
  autoscalerAccountName,
  headServiceName,
  LABEL_APP_NAME,
  LABEL_CLUSTER,
  LABEL_CREATED_BY,
  LABEL_NODE_TYPE,
  OPERATOR_NAME,
  ports,
  tokenSecretName,
} from './labels.ts';
import { type ClusterRef, clusterOwnerReference } from './pod-builder.ts';

function ownedMetadata(cluster: ClusterRef, name: string) {
  return {
    name,
    namespace: cluster.namespace,
    labels: { [LABEL_CLUSTER]: cluster.name, [LABEL_APP_NAME]: APP_NAME, [LABEL_CREATED_BY]: OPERATOR_NAME },
    ownerReferences: [clusterOwnerReference(cluster)],
  };
}

/**
 * `<cluster>-head-svc`: headless and publishing not-ready addresses by default, so workers can reach a
 * head that is still starting; a serviceType other than ClusterIP makes it a regular service.
 */
export function buildHeadService(cluster: ClusterRef, spec: RayClusterSpec): Service {
  const user = (spec.headGroupSpec.headService ?? {}) as Service;
  const serviceType = spec.headGroupSpec.serviceType ?? user.spec?.type ?? 'ClusterIP';
  const headless = serviceType === 'ClusterIP';
  const metadata = ownedMetadata(cluster, headServiceName(cluster.name));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...metadata,
      labels: { ...user.metadata?.labels, ...metadata.labels },
      annotations: { ...user.metadata?.annotations, ...spec.headServiceAnnotations },
    },
    spec: {
      ...user.spec,
      type: serviceType,
      ...(headless ? { clusterIP: 'None', publishNotReadyAddresses: true } : {}),
      selector: { [LABEL_CLUSTER]: cluster.name, [LABEL_NODE_TYPE]: 'head' },
      ports: [
        { name: 'gcs-server', port: ports.gcs, targetPort: ports.gcs },
        { name: 'dashboard', port: ports.dashboard, targetPort: ports.dashboard },
        { name: 'serve', port: ports.serve, targetPort: ports.serve },
        { name: 'metrics', port: ports.metrics, targetPort: ports.metrics },
      ],
    },
  };
}

/** The cluster's REST API and cluster-join token, generated once and owned by the cluster. */
export function buildTokenSecret(cluster: ClusterRef, token = randomBytes(24).toString('base64url')): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMetadata(cluster, tokenSecretName(cluster.name)),
    type: 'Opaque',
    stringData: { token },
  };
}

/** What the head's cluster autoscaler needs to read its RayCluster and patch worker counts back. */
export function buildAutoscalerRbac(cluster: ClusterRef): [ServiceAccount, Role, RoleBinding] {
  const name = autoscalerAccountName(cluster.name);
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: ownedMetadata(cluster, name) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: ownedMetadata(cluster, name),
      rules: [
        // Its own cluster only: user code shares the head pod and must not reach other clusters.
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        {
          apiGroups: [RAYLINE_GROUP],
          resources: ['rayclusters'],
          resourceNames: [cluster.name],
          verbs: ['get', 'patch'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: ownedMetadata(cluster, name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: cluster.namespace }],
    },
  ];
}

/**
 * Admits the head's REST API (8265) only from the operator's namespace; the cluster port, the HTTP
 * proxy and metrics stay open. The token still guards the API: this narrows who can even try.
 */
export function buildDashboardNetworkPolicy(cluster: ClusterRef, operatorNamespace: string): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMetadata(cluster, `${cluster.name}-dashboard`),
    spec: {
      podSelector: { matchLabels: { [LABEL_CLUSTER]: cluster.name, [LABEL_NODE_TYPE]: 'head' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': operatorNamespace } } },
          ],
          ports: [{ port: ports.dashboard, protocol: 'TCP' }],
        },
        {
          ports: [ports.gcs, ports.serve, ports.metrics].map((port) => ({ port, protocol: 'TCP' })),
        },
      ],
    },
  };
}
