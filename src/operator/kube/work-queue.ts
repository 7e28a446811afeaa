/**
 * The queue between informer events and reconciles, shaped like client-go's rate-limited work
 * queue: a key waits at most once however often it is added, a key is never reconciled by two
 * workers at once (added while in progress, it runs again after done()), and failures back off.
 */
import { type Clock, realClock, type TimerHandle } from './clock.ts';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter.ts';

export interface WorkQueueOptions extends RateLimiterOptions {
  clock?: Clock;
}

export class WorkQueue<K = string> {
  readonly #queue: K[] = [];
  /** Keys waiting to be processed (in #queue, or parked until their current run is done). */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #delayed = new Map<K, { at: number; timer: TimerHandle }>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  readonly #limiter: RateLimiter<K>;
  readonly #clock: Clock;
  #shutDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? realClock;
    this.#limiter = new RateLimiter<K>({ ...options, clock: this.#clock });
  }

  add(key: K): void {
    if (this.#shutDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
    }
  }

  /** Adds key once delayMs has passed; of several pending delays for one key the earliest wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.#shutDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.timer.cancel();
    const timer = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { at, timer });
  }

  /** Adds key after its backoff: per-key exponential, bounded by the global rate. */
  addRateLimited(key: K): void {
    if (this.#shutDown) return;
    this.addAfter(key, this.#limiter.when(key));
  }

  /** Clears key's failure count: its next failure starts from the base delay again. */
  forget(key: K): void {
    this.#limiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.#limiter.failures(key);
  }

  /** The next key to process, waiting for one; undefined once the queue is shut down. */
  get(): Promise<K | undefined> {
    if (this.#shutDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks key's run finished; if it was added meanwhile it is queued again now. */
  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shutDown) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  /** Keys waiting to be handed out (not those in progress or delayed). */
  len(): number {
    return this.#queue.length;
  }

  isShutDown(): boolean {
    return this.#shutDown;
  }

  /**
   * Stops handing out keys at once (waiting and later get() calls answer undefined) and drops what
   * was queued: a controller that lost leadership must not start another reconcile.
   */
  shutDown(): void {
    if (this.#shutDown) return;
    this.#shutDown = true;
    for (const { timer } of this.#delayed.values()) timer.cancel();
    this.#delayed.clear();
    this.#queue.length = 0;
    this.#dirty.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }
}

export type ReconcileResult = { requeueAfterMs?: number } | undefined;

export interface RunWorkersOptions<K> {
  /** Called with each failed reconcile's error before the key is retried with backoff. */
  onError?: (key: K, err: unknown) => void;
  /** Aborting it shuts the queue down; runWorkers resolves once running reconciles return. */
  signal?: AbortSignal;
}

/**
 * Runs `concurrency` workers taking keys off the queue until it shuts down. A failed reconcile is
 * retried with backoff; a successful one resets the key's backoff and, when it asks, runs again
 * after requeueAfterMs. Each reconcile gets the signal so it can stop early.
 */
export async function runWorkers<K>(
  queue: WorkQueue<K>,
  concurrency: number,
  reconcile: (key: K, signal: AbortSignal) => Promise<ReconcileResult> | Promise<void>,
  options: RunWorkersOptions<K> = {},
): Promise<void> {
  const signal = options.signal ?? new AbortController().signal;
  const stop = () => queue.shutDown();
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  const worker = async () => {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      try {
        const result = await reconcile(key, signal);
        queue.forget(key);
        if (result && result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        queue.addRateLimited(key);
        try {
          options.onError?.(key, err);
        } catch {
          // A failing error hook must not kill the worker.
        }
      } finally {
        queue.done(key);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
