/**
 * The `--autoscaling-config cluster.yaml` file of `rayline start --head` with the `local` provider:
 * the worker groups a head may start on this machine, written as a RayCluster's autoscaling fields in
 * KubeRay's camelCase (so the file reads like the `spec` one would deploy), and its mapping to the
 * planner's ClusterShape.
 */
import { z } from 'zod';
import { RaylineError } from '../../errors.ts';
import { formatIssues, issuesToText } from '../../schema/issues.ts';
import { parseQuantity } from '../../schema/quantity.ts';
import { groupNameSchema, upscalingModes } from '../../schema/raycluster.ts';
import { readYamlFile } from '../../yaml-file.ts';
import type { ClusterShape, WorkerGroupShape } from './types.ts';

const defaultIdleTimeoutS = 60;

const count = () => z.int().min(0);

/**
 * An amount of a resource. A Kubernetes quantity string is accepted too ("16Gi", "500m") because
 * `memory` in bytes as a bare number is hard to read and easy to get wrong by a factor of 1024.
 */
const amount = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = parseQuantity(value);
  if (n === undefined || n < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a non-negative number or Kubernetes quantity, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return n;
});

export const workerGroupConfigSchema = z
  .strictObject({
    // A RayCluster's rule: it becomes part of worker ids and of labels.
    groupName: groupNameSchema,
    minReplicas: count().default(0),
    maxReplicas: count(),
    /** Workers started on the head's first autoscaler round; minReplicas when absent. */
    replicas: count().optional(),
    idleTimeoutSeconds: count().optional(),
    /** What one worker offers: `CPU`, `GPU`, `memory` (bytes) and custom resources. */
    resources: z.record(z.string().min(1), amount).default({}),
    labels: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((group, ctx) => {
    if (group.minReplicas > group.maxReplicas) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxReplicas'],
        message: `maxReplicas (${group.maxReplicas}) is less than minReplicas (${group.minReplicas})`,
      });
    }
    if (
      group.replicas !== undefined &&
      (group.replicas < group.minReplicas || group.replicas > group.maxReplicas)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicas'],
        message: `replicas (${group.replicas}) must be between minReplicas (${group.minReplicas}) and maxReplicas (${group.maxReplicas})`,
      });
    }
  });

export const autoscalingConfigSchema = z
  .strictObject({
    autoscalerOptions: z
      .strictObject({
        idleTimeoutSeconds: count().default(defaultIdleTimeoutS),
        upscalingMode: z.enum(upscalingModes).default('Default'),
      })
      .default({ idleTimeoutSeconds: defaultIdleTimeoutS, upscalingMode: 'Default' }),
    workerGroupSpecs: z.array(workerGroupConfigSchema),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.workerGroupSpecs.forEach((group, i) => {
      const first = seen.get(group.groupName);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroupSpecs', i, 'groupName'],
          message: `'${group.groupName}' is already the groupName of workerGroupSpecs[${first}]`,
        });
      } else seen.set(group.groupName, i);
    });
  });

export type AutoscalingConfig = z.output<typeof autoscalingConfigSchema>;
export type AutoscalingConfigInput = z.input<typeof autoscalingConfigSchema>;
export type WorkerGroupConfig = z.output<typeof workerGroupConfigSchema>;

/** Validates a parsed document; `source` names it in errors (the file, quoted). */
export function parseAutoscalingConfig(document: unknown, source: string): AutoscalingConfig {
  const parsed = autoscalingConfigSchema.safeParse(document ?? {});
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `invalid autoscaling config ${source}: ${issuesToText(issues)}`,
      { issues },
    );
  }
  return parsed.data;
}

/** Reads and validates the file given to `--autoscaling-config`. */
export function loadAutoscalingConfig(file: string): AutoscalingConfig {
  return parseAutoscalingConfig(readYamlFile(file, 'autoscaling config'), `'${file}'`);
}

/** The workers a group starts with: `replicas`, else `minReplicas`. */
export function initialReplicas(group: WorkerGroupConfig): number {
  return group.replicas ?? group.minReplicas;
}

/** The planner's view of the config; local workers are single-host, so replicas count workers. */
export function clusterShapeOf(config: AutoscalingConfig): ClusterShape {
  return {
    groups: config.workerGroupSpecs.map((group): WorkerGroupShape => {
      const shape: WorkerGroupShape = {
        name: group.groupName,
        resourcesPerWorker: { ...group.resources },
        minWorkers: group.minReplicas,
        maxWorkers: group.maxReplicas,
      };
      if (group.idleTimeoutSeconds !== undefined) shape.idleTimeoutS = group.idleTimeoutSeconds;
      return shape;
    }),
    idleTimeoutS: config.autoscalerOptions.idleTimeoutSeconds,
    upscalingMode: config.autoscalerOptions.upscalingMode,
  };
}
