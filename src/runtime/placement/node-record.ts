/**
 * One node's capacity and what is taken of it, laid out for the scheduler's hot loop: resource names
 * are interned to small integers per ledger and a node keeps its free and total amounts in arrays,
 * so judging a node for a replica is a few array reads instead of object-key lookups (a full pass
 * judges 100 nodes for each of 1,000 replicas).
 */
import { GpuDevices } from './gpu-devices.ts';
import { addInto, epsilon } from './resources.ts';
import type { ResourceSet } from './types.ts';

/** Resource names as small integers, shared by the nodes of one ledger. CPU is always 0. */
export class ResourceNames {
  #ids = new Map<string, number>([['CPU', 0]]);

  intern(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#ids.size;
      this.#ids.set(name, id);
    }
    return id;
  }

  /** -1 for a name no node has ever had: nothing of it is free anywhere. */
  lookup(name: string): number {
    return this.#ids.get(name) ?? -1;
  }

  /** A request in the arrays' terms: positive amounts only, GPUs apart (they are per device). */
  compile(resources: ResourceSet): Need {
    const need: Need = { ids: [], amounts: [], gpu: 0 };
    for (const name in resources) {
      const amount = resources[name];
      if (!(amount > 0)) continue;
      if (name === 'GPU') need.gpu = amount;
      else {
        need.ids.push(this.lookup(name));
        need.amounts.push(amount);
      }
    }
    return need;
  }
}

export interface Need {
  ids: number[];
  amounts: number[];
  gpu: number;
}

const cpuId = 0;

export class NodeRecord {
  readonly id: string;
  readonly #names: ResourceNames;
  /** Non-GPU resources, as registered and as taken; GPUs live in `devices`. */
  totals: ResourceSet = {};
  readonly used: ResourceSet = {};
  #free: number[] = [];
  #total: number[] = [];
  /** Custom resources with capacity here, by id: a replica not asking for them should go elsewhere. */
  #specialIds: number[] = [];
  readonly devices = new GpuDevices([]);
  /** Replica id -> number of its grants here. */
  readonly replicas = new Map<string, number>();
  /** The view last synced, so an unchanged node costs one comparison per tick. */
  source: { total: ResourceSet; gpuIds: string[] } | undefined;

  constructor(id: string, names: ResourceNames) {
    this.id = id;
    this.#names = names;
  }

  setTotals(totals: ResourceSet, gpuIds: readonly string[]): void {
    this.totals = totals;
    this.devices.reset(gpuIds);
    this.#free = [];
    this.#total = [];
    this.#specialIds = [];
    for (const name in totals) {
      const id = this.#names.intern(name);
      this.#slot(id);
      this.#total[id] = totals[name];
      if (name !== 'CPU' && name !== 'memory' && totals[name] > 0) this.#specialIds.push(id);
    }
    for (const name of new Set([...Object.keys(totals), ...Object.keys(this.used)])) this.#refresh(name);
  }

  /** Adds (or with -1 removes) non-GPU resources to what is taken. */
  take(resources: ResourceSet, sign: 1 | -1): void {
    addInto(this.used, resources, sign);
    for (const name in resources) if (name !== 'GPU') this.#refresh(name);
  }

  get specialNames(): string[] {
    const names = Object.keys(this.totals).filter((n) => n !== 'CPU' && n !== 'memory' && this.totals[n] > 0);
    if (this.devices.ids.length > 0) names.push('GPU');
    return names;
  }

  free(name: string): number {
    if (name === 'GPU') return this.devices.freeTotal();
    return (this.totals[name] ?? 0) - (this.used[name] ?? 0);
  }

  total(name: string): number {
    return name === 'GPU' ? this.devices.ids.length : (this.totals[name] ?? 0);
  }

  fits(resources: ResourceSet): boolean {
    return this.fitScore(this.#names.compile(resources)) !== Number.NEGATIVE_INFINITY;
  }

  /**
   * -Infinity when `need` does not fit now; otherwise how much stays free, as shares of the node's
   * totals summed over what it asks for (its CPU share when it asks for nothing).
   */
  fitScore(need: Need): number {
    let score = 0;
    let counted = false;
    const { ids, amounts } = need;
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j];
      const free = id >= 0 && id < this.#free.length ? this.#free[id] : 0;
      if (free + epsilon < amounts[j]) return Number.NEGATIVE_INFINITY;
      const total = id >= 0 && id < this.#total.length ? this.#total[id] : 0;
      if (total > 0) {
        score += (free - amounts[j]) / total;
        counted = true;
      }
    }
    if (need.gpu > 0) {
      if (!this.devices.canTake(need.gpu)) return Number.NEGATIVE_INFINITY;
      score += (this.devices.freeTotal() - need.gpu) / this.devices.ids.length;
      counted = true;
    }
    if (counted) return score;
    const cpus = cpuId < this.#total.length ? this.#total[cpuId] : 0;
    return cpus > 0 ? this.#free[cpuId] / cpus : 0;
  }

  /** How many kinds of special resource (GPU, custom) this node offers that `need` leaves unused. */
  unusedSpecials(need: Need): number {
    let waste = need.gpu <= 0 && this.devices.ids.length > 0 ? 1 : 0;
    for (const id of this.#specialIds) if (!need.ids.includes(id)) waste++;
    return waste;
  }

  available(): ResourceSet {
    const out: ResourceSet = {};
    for (const name in this.totals) out[name] = this.free(name);
    for (const name in this.used) if (!(name in out)) out[name] = this.free(name);
    if (this.devices.ids.length > 0) out.GPU = this.devices.freeTotal();
    return out;
  }

  #refresh(name: string): void {
    const id = this.#names.intern(name);
    this.#slot(id);
    this.#free[id] = this.free(name);
  }

  /** Keeps the arrays dense (no holes, which would slow every read) up to `id`. */
  #slot(id: number): void {
    while (this.#free.length <= id) this.#free.push(0);
    while (this.#total.length <= id) this.#total.push(0);
  }
}
