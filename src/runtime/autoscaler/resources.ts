/**
 * Arithmetic on resource sets for the planner, and their wording in messages. Amounts are floats
 * (fractional GPUs), so comparisons allow a tiny epsilon: 0.1 + 0.2 GPU must fit a 0.3 GPU gap.
 */
import type { ResourceSet } from './types.ts';

const epsilon = 1e-9;

/** Resources that make a node special: a bundle that does not ask for them should not take one. */
export function isCommodity(name: string): boolean {
  return name === 'CPU' || name === 'memory';
}

export function fits(free: ResourceSet, need: ResourceSet): boolean {
  for (const [name, amount] of Object.entries(need)) {
    if (amount > 0 && (free[name] ?? 0) + epsilon < amount) return false;
  }
  return true;
}

export function subtract(from: ResourceSet, amount: ResourceSet): void {
  for (const [name, value] of Object.entries(amount)) from[name] = (from[name] ?? 0) - value;
}

export function add(to: ResourceSet, amount: ResourceSet): void {
  for (const [name, value] of Object.entries(amount)) to[name] = (to[name] ?? 0) + value;
}

export function sum(sets: readonly ResourceSet[]): ResourceSet {
  const out: ResourceSet = {};
  for (const set of sets) add(out, set);
  return out;
}

/**
 * How many kinds of special resource (GPU, TPU, custom) a node offers that the bundle leaves
 * unused: placing a CPU-only replica on a GPU node wastes the GPU for whoever needs it next.
 */
export function specialWaste(offer: ResourceSet, need: ResourceSet): number {
  let waste = 0;
  for (const [name, amount] of Object.entries(offer)) {
    if (!isCommodity(name) && amount > 0 && !((need[name] ?? 0) > 0)) waste++;
  }
  return waste;
}

/** The divisor per resource that makes amounts comparable: the largest any node or group offers. */
export function resourceScale(offers: readonly ResourceSet[]): ResourceSet {
  const scale: ResourceSet = {};
  for (const offer of offers) {
    for (const [name, amount] of Object.entries(offer)) {
      if (amount > (scale[name] ?? 0)) scale[name] = amount;
    }
  }
  return scale;
}

/** The sum of amounts, each as a fraction of its scale: the "size" bin-packing sorts and compares by. */
export function normalizedSize(set: ResourceSet, scale: ResourceSet): number {
  let size = 0;
  for (const [name, amount] of Object.entries(set)) {
    if (amount > 0) size += amount / (scale[name] && scale[name] > 0 ? scale[name] : amount);
  }
  return size;
}

const canonicalOrder = ['CPU', 'GPU', 'memory'];

/** `{CPU: 1, GPU: 4, memory: 16GiB}`: the resources in messages, zero amounts left out. */
export function formatResources(set: ResourceSet): string {
  const names = Object.keys(set)
    .filter((name) => set[name] !== 0)
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return `{${names.map((name) => `${name}: ${formatAmount(name, set[name])}`).join(', ')}}`;
}

function rank(name: string): number {
  const i = canonicalOrder.indexOf(name);
  return i < 0 ? canonicalOrder.length : i;
}

function formatAmount(name: string, amount: number): string {
  const round = (n: number) => String(Math.round(n * 100) / 100);
  if (name !== 'memory') return round(amount);
  if (amount >= 2 ** 30) return `${round(amount / 2 ** 30)}GiB`;
  if (amount >= 2 ** 20) return `${round(amount / 2 ** 20)}MiB`;
  return `${round(amount)}B`;
}
