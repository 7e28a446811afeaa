/**
 * The GPU devices of one node and the share of each that is taken. A replica is handed device ids,
 * not an amount, so the ledger must know which device each GPU of a node's total is:
 *
 * - a whole request (1, 2, ...) takes that many devices nobody uses, lowest index first;
 * - a fraction (0 < f < 1) goes onto one device with at least f left, never across two. Among the
 *   devices where it fits it prefers the fullest (lowest index on ties): sharing devices already
 *   shared keeps whole devices free for whole-GPU replicas, where plain first-fit would start
 *   splitting device 0 while device 1 still had room.
 */
import { epsilon, isWholeGpuAmount } from './resources.ts';

export interface GpuTake {
  gpuIds: string[];
  /** Device id -> share, only for a fractional take. */
  gpuFractions?: Record<string, number>;
}

export class GpuDevices {
  #ids: string[] = [];
  /** Share of each device still free, parallel to #ids: 1 is an unused device. */
  #free: number[] = [];
  #index = new Map<string, number>();
  /** Kept current on every change: the scheduler reads them for each node of each replica. */
  #freeSum = 0;
  #wholeCount = 0;

  constructor(ids: readonly string[]) {
    for (const id of ids) this.#add(id);
    this.#recount();
  }

  get ids(): readonly string[] {
    return this.#ids;
  }

  /** Takes a new device list, keeping what is taken on devices that remain (or are still in use). */
  reset(ids: readonly string[]): void {
    const keep = new Map<string, number>();
    for (let i = 0; i < this.#ids.length; i++) keep.set(this.#ids[i], this.#free[i]);
    this.#ids = [];
    this.#free = [];
    this.#index.clear();
    for (const id of ids) this.#add(id, keep.get(id));
    for (const [id, free] of keep) if (free < 1 - epsilon && !this.#index.has(id)) this.#add(id, free);
    this.#recount();
  }

  /** The sum of free shares: what `available().GPU` reports. */
  freeTotal(): number {
    return this.#freeSum;
  }

  canTake(amount: number): boolean {
    if (amount <= 0) return true;
    if (amount > 1 || isWholeGpuAmount(amount)) return this.#wholeCount >= Math.round(amount);
    return this.#freeSum + epsilon >= amount && this.#fractionDevice(amount) >= 0;
  }

  /** The devices for `amount` GPUs, marked taken; undefined when they are not free. */
  take(amount: number): GpuTake | undefined {
    if (amount <= 0) return { gpuIds: [] };
    if (amount > 1 || isWholeGpuAmount(amount)) {
      const want = Math.round(amount);
      if (this.#wholeCount < want) return undefined;
      const gpuIds: string[] = [];
      for (let i = 0; i < this.#ids.length && gpuIds.length < want; i++) {
        if (this.#free[i] >= 1 - epsilon) {
          this.#free[i] = 0;
          gpuIds.push(this.#ids[i]);
        }
      }
      this.#recount();
      return { gpuIds };
    }
    const i = this.#fractionDevice(amount);
    if (i < 0) return undefined;
    this.#free[i] = snap(this.#free[i] - amount);
    this.#recount();
    return { gpuIds: [this.#ids[i]], gpuFractions: { [this.#ids[i]]: amount } };
  }

  /** Gives back what `take` (or `force`) took. */
  give(take: GpuTake): void {
    for (const id of take.gpuIds) {
      const i = this.#index.get(id);
      if (i !== undefined) this.#free[i] = snap(this.#free[i] + (take.gpuFractions?.[id] ?? 1));
    }
    this.#recount();
  }

  /**
   * Marks exactly these devices taken, as a running replica reports them; unknown ids become
   * devices. Returns the ids that are now overcommitted (more than whole), for the caller to report.
   */
  force(take: GpuTake): string[] {
    const over: string[] = [];
    for (const id of take.gpuIds) {
      let i = this.#index.get(id);
      if (i === undefined) i = this.#add(id, 1);
      this.#free[i] = snap(this.#free[i] - (take.gpuFractions?.[id] ?? 1));
      if (this.#free[i] < -epsilon) over.push(id);
    }
    this.#recount();
    return over;
  }

  /** Device id -> share taken, devices in use only. */
  used(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.#ids.length; i++)
      if (this.#free[i] < 1) out[this.#ids[i]] = snap(1 - this.#free[i]);
    return out;
  }

  /** Device id -> share free, for messages about GPUs split across devices. */
  free(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.#ids.length; i++) out[this.#ids[i]] = this.#free[i];
    return out;
  }

  #add(id: string, free = 1): number {
    this.#index.set(id, this.#ids.length);
    this.#ids.push(id);
    this.#free.push(free);
    return this.#ids.length - 1;
  }

  #recount(): void {
    this.#freeSum = 0;
    this.#wholeCount = 0;
    for (const free of this.#free) {
      this.#freeSum += free;
      if (free >= 1 - epsilon) this.#wholeCount++;
    }
  }

  /** The fullest device that still has `amount` free, or -1. */
  #fractionDevice(amount: number): number {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      if (this.#free[i] + epsilon >= amount && (best < 0 || this.#free[i] < this.#free[best] - epsilon))
        best = i;
    }
    return best;
  }
}

/** Float noise from adding and removing shares must not leave a device at 0.9999999999 or 1e-17. */
function snap(value: number): number {
  if (Math.abs(value) < epsilon) return 0;
  if (Math.abs(value - 1) < epsilon) return 1;
  return value;
}
