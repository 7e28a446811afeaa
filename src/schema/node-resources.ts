/**
 * What a pod's Rayline container offers as a node: `rayline start` flags derived from its resources
 * (as KubeRay derives `ray start`'s), and the arguments they make with the group's rayStartParams.
 * Shared by the operator (pod commands) and the cluster autoscaler (the size of a group's worker).
 */
import type { ContainerSpec } from './kube-common.ts';
import { parseQuantity } from './quantity.ts';

type Quantities = Record<string, string | number>;

/** Limits keys of accelerators other than GPUs, mapped to the custom resource Rayline schedules by. */
const acceleratorResources: Record<string, string> = {
  'google.com/tpu': 'TPU',
  'aws.amazon.com/neuroncore': 'neuron_cores',
  'aws.amazon.com/neuron': 'neuron_cores',
};

/** Flags a container's resources imply: `num-cpus`, `memory`, `num-gpus`, `resources`. */
export function resourceFlags(container: ContainerSpec): Record<string, string> {
  const limits: Quantities = container.resources?.limits ?? {};
  const requests: Quantities = container.resources?.requests ?? {};
  const flags: Record<string, string> = {};
  const cpu = parseQuantity(limits.cpu ?? requests.cpu ?? '');
  if (cpu !== undefined && cpu > 0) flags['num-cpus'] = String(Math.ceil(cpu));
  const memory = parseQuantity(limits.memory ?? '');
  if (memory !== undefined && memory > 0) flags.memory = String(Math.floor(memory));
  const gpuKey = Object.keys(limits).find((key) => key.toLowerCase().endsWith('gpu'));
  const gpus = gpuKey === undefined ? undefined : parseQuantity(limits[gpuKey] ?? '');
  if (gpus !== undefined && gpus > 0) flags['num-gpus'] = String(Math.floor(gpus));
  const custom: Record<string, number> = {};
  for (const [key, name] of Object.entries(acceleratorResources)) {
    const amount = parseQuantity(limits[key] ?? '');
    if (amount !== undefined && amount > 0) custom[name] = amount;
  }
  if (Object.keys(custom).length > 0) flags.resources = JSON.stringify(custom);
  return flags;
}

/**
 * Turns parameters into arguments: sorted by name, `"true"` as a bare flag, `"false"` dropped, the
 * rest as `--name=value`. Explicit rayStartParams win over derived flags.
 */
export function startArguments(
  nodeArgs: readonly string[],
  derived: Record<string, string>,
  rayStartParams: Record<string, string>,
): string[] {
  const params: Record<string, string> = { ...derived, ...rayStartParams, block: 'true' };
  const flags = Object.keys(params)
    .sort()
    .flatMap((name) => {
      const value = params[name] ?? '';
      if (value === 'true') return [`--${name}`];
      if (value === 'false') return [];
      return [`--${name}=${value}`];
    });
  return ['start', ...nodeArgs, ...flags];
}

/**
 * The resources a node started from this container and these rayStartParams registers with:
 * `CPU`, `GPU`, `memory` (bytes) and custom resources, as the cluster autoscaler sizes a group.
 */
export function nodeResources(
  container: ContainerSpec,
  rayStartParams: Record<string, string>,
): Record<string, number> {
  const flags = { ...resourceFlags(container), ...rayStartParams };
  const out: Record<string, number> = {};
  const number = (key: string) => {
    const value = flags[key] === undefined ? undefined : Number(flags[key]);
    return value !== undefined && Number.isFinite(value) ? value : undefined;
  };
  const cpu = number('num-cpus');
  const gpu = number('num-gpus');
  const memory = number('memory');
  if (cpu !== undefined) out.CPU = cpu;
  if (gpu !== undefined) out.GPU = gpu;
  if (memory !== undefined) out.memory = memory;
  if (flags.resources) {
    const custom = JSON.parse(flags.resources) as Record<string, number>;
    for (const [name, amount] of Object.entries(custom)) if (typeof amount === 'number') out[name] = amount;
  }
  return out;
}
