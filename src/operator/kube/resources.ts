/**
 * The shapes the controller machinery needs from any Kubernetes object, and descriptors of the
 * resources the operator reads and writes. Objects travel as plain JSON (timestamps are strings),
 * so these types describe the wire, not client-node's generated classes.
 */

import type { ObjectMeta, OwnerReference } from '../../schema/kube-common.ts';

export type { ObjectMeta, OwnerReference };

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** The Status object the API server answers errors (and watch ERROR events) with. */
export interface KubeStatus {
  kind?: 'Status';
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    kind?: string;
    causes?: { field?: string; message?: string; reason?: string }[];
  };
}

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

function core(plural: string, kind: string): ResourceType {
  return { group: '', version: 'v1', plural, kind, namespaced: true };
}

export const Pods = core('pods', 'Pod');
export const Services = core('services', 'Service');
export const ServiceAccounts = core('serviceaccounts', 'ServiceAccount');
export const Secrets = core('secrets', 'Secret');
export const ConfigMaps = core('configmaps', 'ConfigMap');
export const Events = core('events', 'Event');
export const Namespaces: ResourceType = { ...core('namespaces', 'Namespace'), namespaced: false };
export const Roles: ResourceType = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'roles',
  kind: 'Role',
  namespaced: true,
};
export const RoleBindings: ResourceType = { ...Roles, plural: 'rolebindings', kind: 'RoleBinding' };
export const Leases: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
};
export const NetworkPolicies: ResourceType = {
  group: 'networking.k8s.io',
  version: 'v1',
  plural: 'networkpolicies',
  kind: 'NetworkPolicy',
  namespaced: true,
};
export const RayClusters: ResourceType = {
  group: 'rayline.dev',
  version: 'v1',
  plural: 'rayclusters',
  kind: 'RayCluster',
  namespaced: true,
};
export const RayServices: ResourceType = { ...RayClusters, plural: 'rayservices', kind: 'RayService' };

/** `group/version`, or just `version` for the core group: the apiVersion field of its objects. */
export function apiVersionOf(resource: ResourceType): string {
  return resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
}

/** The key caches and work queues use: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by objectKey. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
