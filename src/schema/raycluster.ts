/**
 * RayCluster (`rayline.dev/v1`): KubeRay's fields, defaults and status, so that a `ray.io/v1`
 * manifest ports by changing its apiVersion and image. The single source of the CRD in `crds/` and
 * of the operator's view of a cluster.
 */
import { z } from 'zod';
import {
  conditionSchema,
  embeddedServiceSchema,
  int32,
  type ObjectMeta,
  podTemplateSchema,
  preserveUnknown,
  stringMap,
} from './kube-common.ts';

export const RAYLINE_GROUP = 'rayline.dev';
export const RAYLINE_VERSION = 'v1';
export const RAYLINE_API_VERSION = `${RAYLINE_GROUP}/${RAYLINE_VERSION}`;

const rayStartParams = () =>
  stringMap()
    .default({})
    .meta({ description: 'Flags for `rayline start`, without dashes; the value "true" makes a bare flag.' });

export const headGroupSpecSchema = z.object({
  serviceType: z
    .string()
    .optional()
    .meta({ description: 'Type of the head service; headless ClusterIP by default.' }),
  headService: embeddedServiceSchema.optional(),
  enableIngress: z.boolean().optional(),
  rayStartParams: rayStartParams(),
  template: podTemplateSchema,
});

/** A worker group's name: part of pod names, worker ids and labels. */
export const groupNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lower-case letters, digits and "-")');

export const workerGroupSpecSchema = z.object({
  groupName: groupNameSchema,
  replicas: int32().min(0).default(0),
  minReplicas: int32().min(0).default(0),
  maxReplicas: int32().min(0).default(2147483647),
  numOfHosts: int32().min(1).default(1),
  idleTimeoutSeconds: int32().min(0).optional(),
  suspend: z.boolean().optional(),
  rayStartParams: rayStartParams(),
  template: podTemplateSchema,
  scaleStrategy: z
    .object({
      workersToDelete: z
        .array(z.string())
        .optional()
        .meta({ description: 'Pods the autoscaler chose to remove.' }),
    })
    .optional(),
});

export const upscalingModes = ['Default', 'Aggressive', 'Conservative'] as const;

export const autoscalerOptionsSchema = z
  .looseObject({
    idleTimeoutSeconds: int32().min(0).optional(),
    upscalingMode: z.enum(upscalingModes).optional(),
    resources: z.looseObject({}).meta(preserveUnknown).optional(),
    env: z.array(z.looseObject({ name: z.string() }).meta(preserveUnknown)).optional(),
    image: z.string().optional(),
    imagePullPolicy: z.string().optional(),
  })
  .meta(preserveUnknown);

export const rayClusterSpecSchema = z
  .object({
    rayVersion: z
      .string()
      .optional()
      .meta({ description: 'Accepted for KubeRay compatibility; the image decides.' }),
    enableInTreeAutoscaling: z.boolean().optional(),
    autoscalerOptions: autoscalerOptionsSchema.optional(),
    headServiceAnnotations: stringMap().optional(),
    suspend: z.boolean().optional(),
    managedBy: z.string().optional(),
    headGroupSpec: headGroupSpecSchema,
    workerGroupSpecs: z.array(workerGroupSpecSchema).default([]),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.workerGroupSpecs.forEach((group, i) => {
      if (seen.has(group.groupName)) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroupSpecs', i, 'groupName'],
          message: `duplicate groupName '${group.groupName}'`,
        });
      }
      seen.add(group.groupName);
      if (group.minReplicas > group.maxReplicas) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroupSpecs', i, 'minReplicas'],
          message: `minReplicas (${group.minReplicas}) is greater than maxReplicas (${group.maxReplicas})`,
        });
      }
    });
  });

export const rayClusterStates = ['ready', 'suspended', 'failed'] as const;

export const rayClusterStatusSchema = z.object({
  state: z.string().optional(),
  reason: z.string().optional(),
  desiredCPU: z.string().optional(),
  desiredMemory: z.string().optional(),
  desiredGPU: z.string().optional(),
  desiredWorkerReplicas: int32().optional(),
  readyWorkerReplicas: int32().optional(),
  availableWorkerReplicas: int32().optional(),
  minWorkerReplicas: int32().optional(),
  maxWorkerReplicas: int32().optional(),
  endpoints: stringMap().optional(),
  head: z
    .object({
      podIP: z.string().optional(),
      podName: z.string().optional(),
      serviceIP: z.string().optional(),
      serviceName: z.string().optional(),
    })
    .optional(),
  lastUpdateTime: z.string().meta({ format: 'date-time' }).optional(),
  observedGeneration: z.number().int().optional(),
  conditions: z.array(conditionSchema).optional(),
});

export type RayClusterSpecInput = z.input<typeof rayClusterSpecSchema>;
export type RayClusterSpec = z.output<typeof rayClusterSpecSchema>;
export type WorkerGroupSpec = z.output<typeof workerGroupSpecSchema>;
export type RayClusterStatus = z.output<typeof rayClusterStatusSchema>;

export interface RayCluster {
  apiVersion: typeof RAYLINE_API_VERSION;
  kind: 'RayCluster';
  metadata: ObjectMeta;
  spec: RayClusterSpecInput;
  status?: RayClusterStatus;
}
