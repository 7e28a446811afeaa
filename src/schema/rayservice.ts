/**
 * RayService (`rayline.dev/v1`): a serve config (`serveConfigV2`, the same YAML `rayline serve
 * deploy` takes) plus the RayCluster spec to run it on, with KubeRay's upgrade fields and status.
 */
import { z } from 'zod';
import { conditionSchema, embeddedServiceSchema, int32, type ObjectMeta } from './kube-common.ts';
import { type RAYLINE_API_VERSION, rayClusterSpecSchema, rayClusterStatusSchema } from './raycluster.ts';

export const upgradeStrategyTypes = ['NewCluster', 'None'] as const;

export const rayServiceSpecSchema = z.object({
  serveConfigV2: z
    .string()
    .optional()
    .meta({ description: 'The serve config YAML (applications, http_options...) submitted to the head.' }),
  rayClusterConfig: rayClusterSpecSchema,
  upgradeStrategy: z.object({ type: z.enum(upgradeStrategyTypes).optional() }).optional(),
  rayClusterDeletionDelaySeconds: int32().min(0).optional().meta({ description: 'Default 60.' }),
  serveService: embeddedServiceSchema.optional(),
  excludeHeadPodFromServeSvc: z.boolean().optional(),
  serviceUnhealthySecondThreshold: int32().optional(),
  deploymentUnhealthySecondThreshold: int32().optional(),
});

const appStatusSchema = z.object({
  status: z.string().optional(),
  message: z.string().optional(),
  healthLastUpdateTime: z.string().meta({ format: 'date-time' }).optional(),
  serveDeploymentStatuses: z
    .record(
      z.string(),
      z.object({
        status: z.string().optional(),
        message: z.string().optional(),
        healthLastUpdateTime: z.string().meta({ format: 'date-time' }).optional(),
      }),
    )
    .optional(),
});

const serviceStatusSchema = z.object({
  rayClusterName: z.string().optional(),
  rayClusterStatus: rayClusterStatusSchema.optional(),
  applicationStatuses: z.record(z.string(), appStatusSchema).optional(),
});

export const rayServiceStatusSchema = z.object({
  serviceStatus: z.string().optional(),
  conditions: z.array(conditionSchema).optional(),
  activeServiceStatus: serviceStatusSchema.optional(),
  pendingServiceStatus: serviceStatusSchema.optional(),
  numServeEndpoints: int32().optional(),
  observedGeneration: z.number().int().optional(),
  lastUpdateTime: z.string().meta({ format: 'date-time' }).optional(),
});

export type RayServiceSpecInput = z.input<typeof rayServiceSpecSchema>;
export type RayServiceSpec = z.output<typeof rayServiceSpecSchema>;
export type RayServiceStatus = z.output<typeof rayServiceStatusSchema>;

export interface RayService {
  apiVersion: typeof RAYLINE_API_VERSION;
  kind: 'RayService';
  metadata: ObjectMeta;
  spec: RayServiceSpecInput;
  status?: RayServiceStatus;
}
