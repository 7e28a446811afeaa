/** Labels, names and ports the operator puts on what it builds; users cannot override the first four. */

export const LABEL_CLUSTER = 'rayline.dev/cluster';
export const LABEL_NODE_TYPE = 'rayline.dev/node-type';
export const LABEL_GROUP = 'rayline.dev/group';
export const LABEL_IDENTIFIER = 'rayline.dev/identifier';
export const LABEL_SERVE = 'rayline.dev/serve';
export const LABEL_APP_NAME = 'app.kubernetes.io/name';
export const LABEL_CREATED_BY = 'app.kubernetes.io/created-by';

export const APP_NAME = 'rayline';
export const OPERATOR_NAME = 'rayline-operator';
export const HEAD_GROUP = 'headgroup';

export type NodeType = 'head' | 'worker';

export const ports = { gcs: 6379, dashboard: 8265, serve: 8000, metrics: 8080 } as const;

export function headServiceName(cluster: string): string {
  return `${cluster}-head-svc`;
}

export function tokenSecretName(cluster: string): string {
  return `${cluster}-token`;
}

export function autoscalerAccountName(cluster: string): string {
  return `${cluster}-autoscaler`;
}

/** The labels that identify a cluster's pods: applied last, so templates cannot change them. */
export function nodeLabels(cluster: string, nodeType: NodeType, group: string): Record<string, string> {
  return {
    [LABEL_CLUSTER]: cluster,
    [LABEL_NODE_TYPE]: nodeType,
    [LABEL_GROUP]: group,
    [LABEL_IDENTIFIER]: `${cluster}-${nodeType}`,
    [LABEL_APP_NAME]: APP_NAME,
    [LABEL_CREATED_BY]: OPERATOR_NAME,
  };
}
