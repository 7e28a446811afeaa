/**
 * How long a failing key waits before it is retried: per-key exponential backoff (so one broken
 * object backs off on its own) combined with a global token bucket (so many failing objects at once
 * cannot hammer the API server). The larger of the two delays wins.
 */
import { type Clock, realClock } from './clock.ts';

export interface RateLimiterOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Sustained retries per second across all keys. */
  qps?: number;
  /** Retries allowed at once before the rate applies. */
  burst?: number;
  clock?: Clock;
}

export class RateLimiter<K> {
  readonly #failures = new Map<K, number>();
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #lastRefill: number;

  constructor(options: RateLimiterOptions = {}) {
    this.#baseMs = options.baseDelayMs ?? 5;
    this.#maxMs = options.maxDelayMs ?? 1_000_000;
    this.#qps = options.qps ?? 10;
    this.#burst = options.burst ?? 100;
    this.#clock = options.clock ?? realClock;
    this.#tokens = this.#burst;
    this.#lastRefill = this.#clock.now();
  }

  /** Records one more failure of key and answers how long it must wait. */
  when(key: K): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    // 2 ** n overflows to Infinity long after the cap applies, which min() handles.
    const backoff = Math.min(this.#maxMs, this.#baseMs * 2 ** n);
    return Math.max(backoff, this.#reserveToken());
  }

  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }

  /**
   * Takes a token, letting the balance go negative: a debt of d tokens means waiting d / qps. Every
   * reservation is honoured in order, like a reservation on golang.org/x/time/rate's limiter.
   */
  #reserveToken(): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#lastRefill) * this.#qps) / 1000);
    this.#lastRefill = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }
}
