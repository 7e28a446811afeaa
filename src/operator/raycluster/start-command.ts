/**
 * The `rayline start` arguments of a head or worker pod: the group's rayStartParams plus flags
 * derived from the Rayline container's resources, as KubeRay derives `ray start`'s.
 */
import type { ContainerSpec } from '../../schema/kube-common.ts';
import { parseQuantity } from '../../schema/quantity.ts';

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
