/**
 * What a RayService owns besides its status: its RayClusters (one active, at most one pending), and
 * the head and serve services that point at the active one. Pure builders.
 */
import { randomBytes } from 'node:crypto';
import type { ObjectMeta, OwnerReference } from '../../schema/kube-common.ts';
import { RAYLINE_API_VERSION, type RayCluster } from '../../schema/raycluster.ts';
import type { RayService } from '../../schema/rayservice.ts';
import type { Service } from '../raycluster/kube-types.ts';
import {
  APP_NAME,
  LABEL_APP_NAME,
  LABEL_CLUSTER,
  LABEL_CREATED_BY,
  LABEL_NODE_TYPE,
  LABEL_SERVE,
  OPERATOR_NAME,
  ports,
} from '../raycluster/labels.ts';

export const LABEL_ORIGIN = 'rayline.dev/originated-from-cr-name';
export const LABEL_ORIGIN_KIND = 'rayline.dev/originated-from-crd';
export const ANNOTATION_CLUSTER_HASH = 'rayline.dev/cluster-hash';
export const ANNOTATION_DELETE_AFTER = 'rayline.dev/delete-after';

export function rayServiceOwner(rs: RayService): OwnerReference {
  return {
    apiVersion: RAYLINE_API_VERSION,
    kind: 'RayService',
    name: rs.metadata.name ?? '',
    uid: rs.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `<service>-<5 random characters>`, as KubeRay names a RayService's clusters. */
export function clusterName(service: string): string {
  const bytes = randomBytes(5);
  return `${service}-${[...bytes].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

export function buildServiceCluster(rs: RayService, name: string, hash: string): RayCluster {
  return {
    apiVersion: RAYLINE_API_VERSION,
    kind: 'RayCluster',
    metadata: {
      name,
      namespace: rs.metadata.namespace,
      labels: { [LABEL_ORIGIN]: rs.metadata.name ?? '', [LABEL_ORIGIN_KIND]: 'RayService' },
      annotations: { [ANNOTATION_CLUSTER_HASH]: hash },
      ownerReferences: [rayServiceOwner(rs)],
    },
    spec: structuredClone(rs.spec.rayClusterConfig),
  };
}

function serviceMetadata(rs: RayService, name: string, user?: ObjectMeta): Service['metadata'] {
  return {
    ...user,
    name,
    namespace: rs.metadata.namespace,
    labels: {
      ...user?.labels,
      [LABEL_ORIGIN]: rs.metadata.name ?? '',
      [LABEL_APP_NAME]: APP_NAME,
      [LABEL_CREATED_BY]: OPERATOR_NAME,
    },
    ownerReferences: [rayServiceOwner(rs)],
  };
}

export function headSelector(cluster: string): Record<string, string> {
  return { [LABEL_CLUSTER]: cluster, [LABEL_NODE_TYPE]: 'head' };
}

export function serveSelector(cluster: string): Record<string, string> {
  return { [LABEL_CLUSTER]: cluster, [LABEL_SERVE]: 'true' };
}

/** `<service>-head-svc`: the active cluster's head, under a name that survives upgrades. */
export function buildHeadService(rs: RayService, activeCluster: string): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: serviceMetadata(rs, `${rs.metadata.name}-head-svc`),
    spec: {
      selector: headSelector(activeCluster),
      ports: [
        { name: 'gcs-server', port: ports.gcs, targetPort: ports.gcs },
        { name: 'dashboard', port: ports.dashboard, targetPort: ports.dashboard },
        { name: 'serve', port: ports.serve, targetPort: ports.serve },
        { name: 'metrics', port: ports.metrics, targetPort: ports.metrics },
      ],
    },
  };
}

/** `<service>-serve-svc`: every serve-ready pod of the active cluster; `serveService` customizes it. */
export function buildServeService(rs: RayService, activeCluster: string): Service {
  const user = (rs.spec.serveService ?? {}) as Service;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: serviceMetadata(
      rs,
      user.metadata?.name ?? `${rs.metadata.name}-serve-svc`,
      user.metadata as ObjectMeta,
    ),
    spec: {
      ...user.spec,
      selector: serveSelector(activeCluster),
      ports: user.spec?.ports ?? [{ name: 'serve', port: ports.serve, targetPort: ports.serve }],
    },
  };
}
