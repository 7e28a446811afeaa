/**
 * Arithmetic on resource sets, the checks that make a request valid, and their wording in messages.
 * Amounts are floats (0.1 CPU, 0.5 GPU), so comparisons allow a tiny epsilon: three replicas of
 * 0.1 + 0.2 + 0.7 must fit one CPU, and releasing them must leave exactly nothing used.
 */
import type { ResourceSet } from './types.ts';

export const epsilon = 1e-9;

/** Adds `amount` into `to`, dropping names whose result is (nearly) zero so that sets stay clean. */
export function addInto(to: ResourceSet, amount: ResourceSet, sign: 1 | -1 = 1): void {
  for (const name in amount) {
    const value = (to[name] ?? 0) + sign * amount[name];
    if (Math.abs(value) < epsilon) delete to[name];
    else to[name] = value;
  }
}

export function sumOf(sets: readonly ResourceSet[]): ResourceSet {
  const out: ResourceSet = {};
  for (const set of sets) addInto(out, set);
  return out;
}

/** Plain comparison, ignoring how GPUs split into devices (the ledger checks that). */
export function fitsIn(free: ResourceSet, need: ResourceSet): boolean {
  for (const name in need) {
    const amount = need[name];
    if (amount > 0 && (free[name] ?? 0) + epsilon < amount) return false;
  }
  return true;
}

/** The request without zero amounts: `{CPU: 0, GPU: 1}` and `{GPU: 1}` ask for the same thing. */
export function positive(set: ResourceSet): ResourceSet {
  const out: ResourceSet = {};
  for (const name in set) if (set[name] > 0) out[name] = set[name];
  return out;
}

/** Whole devices for a request above one GPU; a fraction of one device at or below it. */
export function isWholeGpuAmount(gpus: number): boolean {
  return Math.abs(gpus - Math.round(gpus)) < epsilon;
}

/**
 * Why `resources` cannot be a request of `replicaId`, or undefined when they can. A fractional GPU
 * shares one device, so it cannot be above 1: 1.5 GPUs would have to span two devices.
 */
export function invalidRequest(
  replicaId: string,
  resources: ResourceSet,
  what = 'resources',
): string | undefined {
  for (const name in resources) {
    const amount = resources[name];
    if (!Number.isFinite(amount) || amount < 0) {
      return `replica ${replicaId} asks for ${name}: ${amount} in its ${what}; amounts must be finite numbers, not negative`;
    }
  }
  const gpus = resources.GPU ?? 0;
  if (gpus > 1 && !isWholeGpuAmount(gpus)) {
    return (
      `replica ${replicaId} asks for ${gpus} GPUs in its ${what}: above 1, a GPU request must be a whole ` +
      `number of devices (a fraction shares one device and cannot span two)`
    );
  }
  return undefined;
}

const canonicalOrder = ['CPU', 'GPU', 'memory'];

/** `{CPU: 1, GPU: 0.5, memory: 2GiB}`: a set in messages, zero amounts left out. */
export function formatResources(set: ResourceSet): string {
  const names = Object.keys(set)
    .filter((name) => Math.abs(set[name]) >= epsilon)
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return `{${names.map((name) => `${name}: ${formatAmount(name, set[name])}`).join(', ')}}`;
}

function rank(name: string): number {
  const i = canonicalOrder.indexOf(name);
  return i < 0 ? canonicalOrder.length : i;
}

export function formatAmount(name: string, amount: number): string {
  const round = (n: number) => String(Math.round(n * 100) / 100);
  if (name !== 'memory') return round(amount);
  if (amount >= 2 ** 30) return `${round(amount / 2 ** 30)}GiB`;
  if (amount >= 2 ** 20) return `${round(amount / 2 ** 20)}MiB`;
  return `${round(amount)}B`;
}
