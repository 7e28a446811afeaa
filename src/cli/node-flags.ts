/**
 * The node flags `rayline start` takes from the operator's pods (`--num-cpus`, `--num-gpus`,
 * `--memory`, `--resources`, `--labels`, `--autoscaling-provider`), checked with errors that name
 * the flag. The result is what the node declares it has.
 */
import { RaylineError } from '../errors.ts';

export interface NodeFlags {
  resources: Record<string, number>;
  labels: Record<string, string>;
  autoscalingProvider?: 'kubernetes';
}

function amount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) {
    throw new RaylineError('RL_BAD_REQUEST', `--${flag} must be a non-negative number, got '${value}'`);
  }
  return n;
}

function jsonObject(flag: string, value: string | undefined): Record<string, unknown> {
  if (value === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new RaylineError('RL_BAD_REQUEST', `--${flag} must be a JSON object, got '${value}'`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RaylineError('RL_BAD_REQUEST', `--${flag} must be a JSON object, got '${value}'`);
  }
  return parsed as Record<string, unknown>;
}

export function parseNodeFlags(options: {
  numCpus?: string;
  numGpus?: string;
  memory?: string;
  resources?: string;
  labels?: string;
  autoscalingProvider?: string;
}): NodeFlags {
  const resources: Record<string, number> = {};
  for (const [name, value] of Object.entries(jsonObject('resources', options.resources))) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RaylineError('RL_BAD_REQUEST', `--resources: '${name}' must be a non-negative number`);
    }
    resources[name] = value;
  }
  const cpu = amount('num-cpus', options.numCpus);
  const gpu = amount('num-gpus', options.numGpus);
  const memory = amount('memory', options.memory);
  if (cpu !== undefined) resources.CPU = cpu;
  if (gpu !== undefined) resources.GPU = gpu;
  if (memory !== undefined) resources.memory = memory;
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(jsonObject('labels', options.labels))) {
    if (typeof value !== 'string')
      throw new RaylineError('RL_BAD_REQUEST', `--labels: '${name}' must be a string`);
    labels[name] = value;
  }
  const provider = options.autoscalingProvider;
  if (provider !== undefined && provider !== 'kubernetes') {
    throw new RaylineError(
      'RL_BAD_REQUEST',
      `--autoscaling-provider must be 'kubernetes', got '${provider}'`,
    );
  }
  return { resources, labels, ...(provider ? { autoscalingProvider: provider } : {}) };
}
