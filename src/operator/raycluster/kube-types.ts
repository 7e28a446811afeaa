/**
 * Kubernetes core types as they travel: client-node's generated models with timestamps as the
 * strings the API server sends, since the operator's client does not deserialize into classes.
 */
import type {
  V1Container,
  V1EnvVar,
  V1ObjectMeta,
  V1Pod,
  V1Probe,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';

export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export type Pod = Wire<V1Pod>;
export type Service = Wire<V1Service>;
export type Secret = Wire<V1Secret>;
export type ServiceAccount = Wire<V1ServiceAccount>;
export type Role = Wire<V1Role>;
export type RoleBinding = Wire<V1RoleBinding>;
export type Container = Wire<V1Container>;
export type EnvVar = Wire<V1EnvVar>;
export type Probe = Wire<V1Probe>;
/** client-node renames the wire's `from` to `_from`, so this one is spelled out as it travels. */
export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: Wire<V1ObjectMeta>;
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: ('Ingress' | 'Egress')[];
    ingress: {
      from?: { namespaceSelector?: { matchLabels: Record<string, string> } }[];
      ports?: { port: number; protocol: 'TCP' | 'UDP' }[];
    }[];
  };
}
