/**
 * Deployment options: the snake_case schema shared by config files, the REST API and serveConfigV2,
 * the camelCase type user code writes, the defaults (Ray Serve's), and the precedence rule
 * config > code > defaults.
 */
import { z } from 'zod';
import { sizeProblem, valueLimits } from './document.ts';

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();

export const autoscalingConfigSchema = z
  .strictObject({
    min_replicas: z.number().int().nonnegative().default(1),
    initial_replicas: z.number().int().nonnegative().nullable().optional(),
    max_replicas: z.number().int().positive().default(1),
    target_ongoing_requests: positive.default(2),
    metrics_interval_s: positive.default(10),
    look_back_period_s: positive.default(30),
    smoothing_factor: positive.default(1),
    upscaling_factor: positive.nullable().optional(),
    downscaling_factor: positive.nullable().optional(),
    upscale_delay_s: nonNegative.default(30),
    downscale_delay_s: nonNegative.default(600),
    downscale_to_zero_delay_s: nonNegative.nullable().optional(),
  })
  .superRefine((value, ctx) => {
    if (value.min_replicas > value.max_replicas) {
      ctx.addIssue({
        code: 'custom',
        path: ['min_replicas'],
        message: `min_replicas (${value.min_replicas}) must not exceed max_replicas (${value.max_replicas})`,
      });
    }
    const initial = value.initial_replicas;
    if (initial != null && (initial < value.min_replicas || initial > value.max_replicas)) {
      ctx.addIssue({
        code: 'custom',
        path: ['initial_replicas'],
        message: `initial_replicas (${initial}) must lie within [min_replicas, max_replicas] = [${value.min_replicas}, ${value.max_replicas}]`,
      });
    }
  });

/**
 * autoscaling_config as written in code or a config file: no defaults yet, because
 * `num_replicas: "auto"` supplies its own (min 1, max 100) under the fields the user set, as in Ray.
 * Resolved with {@link autoscalingConfigSchema} when options are validated and merged.
 */
export const autoscalingOptionsSchema = z.strictObject({
  min_replicas: z.number().int().nonnegative().optional(),
  initial_replicas: z.number().int().nonnegative().nullable().optional(),
  max_replicas: z.number().int().positive().optional(),
  target_ongoing_requests: positive.optional(),
  metrics_interval_s: positive.optional(),
  look_back_period_s: positive.optional(),
  smoothing_factor: positive.optional(),
  upscaling_factor: positive.nullable().optional(),
  downscaling_factor: positive.nullable().optional(),
  upscale_delay_s: nonNegative.optional(),
  downscale_delay_s: nonNegative.optional(),
  downscale_to_zero_delay_s: nonNegative.nullable().optional(),
});

export type AutoscalingOptionsInput = z.output<typeof autoscalingOptionsSchema>;

/** `num_replicas: "auto"` means autoscaling with these bounds unless the config says otherwise. */
const autoDefaults = { min_replicas: 1, max_replicas: 100, target_ongoing_requests: 2 };

function resolveAutoscaling(written: AutoscalingOptionsInput, auto: boolean) {
  return autoscalingConfigSchema.safeParse(auto ? { ...autoDefaults, ...written } : written);
}

export const rayActorOptionsSchema = z.strictObject({
  num_cpus: nonNegative.optional(),
  num_gpus: nonNegative.optional(),
  memory: nonNegative.optional(),
  resources: z.record(z.string(), nonNegative).optional(),
});

export const loggingConfigSchema = z.strictObject({
  encoding: z.enum(['TEXT', 'JSON']).default('TEXT'),
  log_level: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']).default('INFO'),
  logs_dir: z.string().nullable().optional(),
  enable_access_log: z.boolean().default(true),
});

/** The request routers Rayline has: Ray Serve's default, and Ray Serve LLM's prefix-aware one. */
export type RequestRouterKind = 'pow2' | 'prefix_cache_affinity';

/**
 * The router a `request_router_class` names: Rayline's short names, or Ray's class (its last
 * dotted or colon-separated segment: `ray.serve.llm.request_router.PrefixCacheAffinityRouter`).
 */
export function requestRouterKind(cls: string): RequestRouterKind | undefined {
  const name = cls.slice(Math.max(cls.lastIndexOf('.'), cls.lastIndexOf(':')) + 1);
  if (cls === 'pow2' || name === 'PowerOfTwoChoicesRequestRouter') return 'pow2';
  if (cls === 'prefix_cache_affinity' || name === 'PrefixCacheAffinityRouter') return 'prefix_cache_affinity';
  return undefined;
}

/** Ray Serve's `request_router_config`, with the routers and the router arguments Rayline knows. */
export const requestRouterConfigSchema = z
  .strictObject({
    request_router_class: z
      .string()
      .refine(
        (cls) => requestRouterKind(cls) !== undefined,
        "must be 'pow2' or 'prefix_cache_affinity' (Ray's PowerOfTwoChoicesRequestRouter or PrefixCacheAffinityRouter)",
      )
      .optional(),
    /** PrefixCacheAffinityRouter's arguments (Ray's names and defaults). */
    request_router_kwargs: z
      .strictObject({
        /** Queues count as balanced while their max - min is at most this (default 10). */
        imbalanced_threshold: nonNegative.optional(),
        /** The fraction of a prompt that must match for affinity to decide (default 0.1). */
        match_rate_threshold: z.number().min(0).max(1).optional(),
      })
      .optional(),
  })
  .superRefine((value, ctx) => {
    const kind = requestRouterKind(value.request_router_class ?? 'pow2');
    const kwargs = Object.keys(value.request_router_kwargs ?? {});
    if (kind === 'pow2' && kwargs.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['request_router_kwargs'],
        message: `${kwargs.join(', ')} apply to request_router_class 'prefix_cache_affinity' only`,
      });
    }
  });

/** Every field optional: used for code options and for per-deployment overrides in a config. */
export const deploymentOptionsSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    num_replicas: z.union([z.number().int().nonnegative(), z.literal('auto')]).optional(),
    max_ongoing_requests: z.number().int().positive().optional(),
    max_queued_requests: z
      .number()
      .int()
      .refine((n) => n === -1 || n > 0, 'must be -1 (no limit) or a positive integer')
      .optional(),
    user_config: z
      .unknown()
      .superRefine((value, ctx) => {
        const problem = sizeProblem(value, valueLimits, 'user_config');
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    autoscaling_config: autoscalingOptionsSchema.nullable().optional(),
    ray_actor_options: rayActorOptionsSchema.optional(),
    placement_group_bundles: z.array(z.record(z.string(), nonNegative)).min(1).nullable().optional(),
    placement_group_strategy: z
      .enum(['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'])
      .nullable()
      .optional(),
    max_replicas_per_node: z.number().int().positive().nullable().optional(),
    health_check_period_s: positive.optional(),
    health_check_timeout_s: positive.optional(),
    graceful_shutdown_wait_loop_s: positive.optional(),
    graceful_shutdown_timeout_s: nonNegative.optional(),
    logging_config: loggingConfigSchema.partial().optional(),
    request_router_config: requestRouterConfigSchema.optional(),
  })
  .superRefine((value, ctx) => {
    if (typeof value.num_replicas === 'number' && value.autoscaling_config) {
      ctx.addIssue({
        code: 'custom',
        path: ['num_replicas'],
        message: 'num_replicas cannot be set together with autoscaling_config (use "auto" or remove one)',
      });
    }
    // Bounds only between valid fields: a bad field itself is reported by autoscalingOptionsSchema.
    if (value.autoscaling_config && autoscalingOptionsSchema.safeParse(value.autoscaling_config).success) {
      const resolved = resolveAutoscaling(value.autoscaling_config, value.num_replicas === 'auto');
      for (const issue of resolved.error?.issues ?? []) {
        ctx.addIssue({ code: 'custom', path: ['autoscaling_config', ...issue.path], message: issue.message });
      }
    }
  });

export type DeploymentOptionsInput = z.input<typeof deploymentOptionsSchema>;
export type AutoscalingConfig = z.output<typeof autoscalingConfigSchema>;
export type RayActorOptions = z.output<typeof rayActorOptionsSchema>;
export type LoggingConfig = z.output<typeof loggingConfigSchema>;
export type RequestRouterConfig = z.output<typeof requestRouterConfigSchema>;

/** A deployment's effective configuration after defaults, code and config are merged. */
export interface DeploymentConfig {
  num_replicas: number;
  max_ongoing_requests: number;
  max_queued_requests: number;
  user_config: unknown;
  autoscaling_config: AutoscalingConfig | null;
  ray_actor_options: RayActorOptions;
  placement_group_bundles: Record<string, number>[] | null;
  placement_group_strategy: 'PACK' | 'SPREAD' | 'STRICT_PACK' | 'STRICT_SPREAD' | null;
  max_replicas_per_node: number | null;
  health_check_period_s: number;
  health_check_timeout_s: number;
  graceful_shutdown_wait_loop_s: number;
  graceful_shutdown_timeout_s: number;
  request_router_config: RequestRouterConfig;
}

export const deploymentDefaults: DeploymentConfig = {
  num_replicas: 1,
  max_ongoing_requests: 5,
  max_queued_requests: -1,
  user_config: null,
  autoscaling_config: null,
  ray_actor_options: { num_cpus: 1 },
  placement_group_bundles: null,
  placement_group_strategy: null,
  max_replicas_per_node: null,
  health_check_period_s: 10,
  health_check_timeout_s: 30,
  graceful_shutdown_wait_loop_s: 2,
  graceful_shutdown_timeout_s: 20,
  request_router_config: { request_router_class: 'pow2' },
};

type ParsedOptions = z.output<typeof deploymentOptionsSchema>;

/**
 * Merges per field: a value in the config beats one in code, which beats the default. Nested option
 * objects (autoscaling_config, ray_actor_options, request_router_config) are replaced whole, as in Ray.
 */
export function mergeDeploymentConfig(code: ParsedOptions, config: ParsedOptions = {}): DeploymentConfig {
  // A deep copy: a caller changing merged.ray_actor_options must not change the defaults of every deployment.
  const merged: DeploymentConfig = structuredClone(deploymentDefaults);
  let autoscaling: AutoscalingOptionsInput | null = null;
  for (const layer of [code, config]) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined || key === 'name' || key === 'logging_config' || key === 'autoscaling_config')
        continue;
      (merged as unknown as Record<string, unknown>)[key] = value;
    }
    // A layer that sets num_replicas to a number overrides autoscaling from a lower layer, and vice versa.
    if (layer.autoscaling_config !== undefined) autoscaling = layer.autoscaling_config;
    else if (typeof layer.num_replicas === 'number') autoscaling = null;
  }
  const auto = (config.num_replicas ?? code.num_replicas) === 'auto';
  merged.autoscaling_config = null;
  if (auto || autoscaling) {
    const resolved = resolveAutoscaling(autoscaling ?? {}, auto);
    if (!resolved.success) throw resolved.error;
    merged.autoscaling_config = resolved.data;
  }
  if (merged.autoscaling_config) {
    const a = merged.autoscaling_config;
    merged.num_replicas = a.initial_replicas ?? a.min_replicas;
  }
  return merged;
}
