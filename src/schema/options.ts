/**
 * The camelCase options user code passes to `deployment()`, and their mapping to the snake_case
 * schema. The mapping is the only place the two spellings meet.
 */
import { RaylineError } from '../errors.ts';
import { type DeploymentOptionsInput, deploymentOptionsSchema } from './deployment-config.ts';
import { formatIssues, issuesToText } from './issues.ts';

export interface AutoscalingOptions {
  minReplicas?: number;
  initialReplicas?: number | null;
  maxReplicas?: number;
  targetOngoingRequests?: number;
  metricsIntervalS?: number;
  lookBackPeriodS?: number;
  smoothingFactor?: number;
  upscalingFactor?: number | null;
  downscalingFactor?: number | null;
  upscaleDelayS?: number;
  downscaleDelayS?: number;
  downscaleToZeroDelayS?: number | null;
}

export interface ActorOptions {
  numCpus?: number;
  numGpus?: number;
  /** Bytes. */
  memory?: number;
  resources?: Record<string, number>;
}

/** Ray Serve's `request_router_config`: which router callers use to pick a replica. */
export interface RequestRouterOptions {
  /** `'pow2'` (power of two choices, the default) or `'prefix_cache_affinity'`; Ray's class names work too. */
  requestRouterClass?: string;
  /** `prefix_cache_affinity`'s arguments. */
  requestRouterKwargs?: { imbalancedThreshold?: number; matchRateThreshold?: number };
}

export interface DeploymentOptions {
  name?: string;
  numReplicas?: number | 'auto';
  maxOngoingRequests?: number;
  maxQueuedRequests?: number;
  userConfig?: unknown;
  autoscalingConfig?: AutoscalingOptions | null;
  rayActorOptions?: ActorOptions;
  placementGroupBundles?: Record<string, number>[] | null;
  placementGroupStrategy?: 'PACK' | 'SPREAD' | 'STRICT_PACK' | 'STRICT_SPREAD' | null;
  maxReplicasPerNode?: number | null;
  healthCheckPeriodS?: number;
  healthCheckTimeoutS?: number;
  gracefulShutdownWaitLoopS?: number;
  gracefulShutdownTimeoutS?: number;
  requestRouterConfig?: RequestRouterOptions;
}

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Keys of these objects are user data (or resource names such as `CPU`) and keep their spelling. */
const opaque = new Set(['userConfig', 'resources', 'placementGroupBundles']);

function toSnake(value: unknown, key?: string): unknown {
  if (key !== undefined && opaque.has(key)) return value;
  if (Array.isArray(value)) return value.map((v) => toSnake(v));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[snake(k)] = toSnake(v, k);
  return out;
}

/** An issue path in the user's camelCase; keys below an opaque option (resource names) keep their spelling. */
function camelPath(path: string): string {
  const match = /^(.*?\b(?:resources|placement_group_bundles|user_config))([.[].*)?$/.exec(path);
  const [head, tail] = match ? [match[1], match[2] ?? ''] : [path, ''];
  return head.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) + tail;
}

/** Validates options written in code; an error names the option in camelCase as the user wrote it. */
export function codeOptionsToSnake(options: DeploymentOptions, where: string): DeploymentOptionsInput {
  const converted = toSnake(options) as DeploymentOptionsInput;
  const result = deploymentOptionsSchema.safeParse(converted);
  if (!result.success) {
    const issues = formatIssues(result.error).map((i) => ({ path: camelPath(i.path), message: i.message }));
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `invalid deployment options for ${where}: ${issuesToText(issues)}`,
      {
        issues,
      },
    );
  }
  return converted;
}
