/**
 * `batch()`: callers send one item each; the replica runs the wrapped function on lists of items.
 * A batch fires when it holds maxBatchSize items or batchWaitTimeoutS after its first item arrived.
 * The function must return one result per item; a wrong length or an exception fails every caller
 * of that batch.
 */
import { RaylineError } from '../errors.ts';

export interface BatchOptions {
  /** Default 10. */
  maxBatchSize?: number;
  /** Default 0.01. */
  batchWaitTimeoutS?: number;
  /** Batches of one method allowed to run at once; default 1. */
  maxConcurrentBatches?: number;
}

interface Waiter<I, O> {
  item: I;
  arrivedMs: number;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/** One queue per replica and method. */
export class BatchQueue<I, O> {
  readonly #run: (items: I[]) => Promise<O[]> | O[];
  readonly #maxBatchSize: number;
  readonly #waitMs: number;
  readonly #maxConcurrent: number;
  readonly #name: string;
  #waiting: Waiter<I, O>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = 0;

  constructor(name: string, run: (items: I[]) => Promise<O[]> | O[], options: BatchOptions = {}) {
    const maxBatchSize = options.maxBatchSize ?? 10;
    const waitS = options.batchWaitTimeoutS ?? 0.01;
    const maxConcurrent = options.maxConcurrentBatches ?? 1;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new RaylineError(
        'RL_CONFIG_INVALID',
        `batch(${name}): maxBatchSize must be an integer >= 1, got ${maxBatchSize}`,
      );
    }
    if (!(waitS >= 0)) {
      throw new RaylineError(
        'RL_CONFIG_INVALID',
        `batch(${name}): batchWaitTimeoutS must be >= 0, got ${waitS}`,
      );
    }
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new RaylineError(
        'RL_CONFIG_INVALID',
        `batch(${name}): maxConcurrentBatches must be an integer >= 1, got ${maxConcurrent}`,
      );
    }
    this.#name = name;
    this.#run = run;
    this.#maxBatchSize = maxBatchSize;
    this.#waitMs = waitS * 1000;
    this.#maxConcurrent = maxConcurrent;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#waiting.push({ item, arrivedMs: performance.now(), resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#waiting.length === 0 || this.#running >= this.#maxConcurrent) return;
    // The wait counts from the oldest item still waiting, also for items that missed a full batch.
    const waitedMs = performance.now() - this.#waiting[0].arrivedMs;
    if (this.#waiting.length >= this.#maxBatchSize || waitedMs >= this.#waitMs) {
      this.#fire();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.#waitMs - waitedMs);
    }
  }

  #fire(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting.splice(0, this.#maxBatchSize);
    this.#running++;
    this.#execute(batch).finally(() => {
      this.#running--;
      this.#schedule();
    });
  }

  async #execute(batch: Waiter<I, O>[]): Promise<void> {
    try {
      const results = await this.#run(batch.map((w) => w.item));
      if (!Array.isArray(results) || results.length !== batch.length) {
        const got = Array.isArray(results) ? `${results.length} results` : `a ${typeof results}`;
        throw new RaylineError(
          'RL_BATCH_SIZE_MISMATCH',
          `batched method '${this.#name}' returned ${got} for a batch of ${batch.length} inputs; it must return one result per input`,
        );
      }
      batch.forEach((w, i) => {
        w.resolve(results[i]);
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}

type BatchedFn<I, O> = (items: I[]) => Promise<O[]> | O[];

/**
 * Wraps a function of lists into a function of one item:
 * `classify = batch({ maxBatchSize: 32 }, (texts: string[]) => this.model.classify(texts))`.
 * Also a method decorator, `@batch({ maxBatchSize: 32 })`, with one queue per instance; TypeScript
 * cannot let a decorator change a method's signature, so typed code uses the field form.
 */
export function batch<I, O>(options: BatchOptions, fn: BatchedFn<I, O>): (item: I) => Promise<O>;
export function batch(
  options?: BatchOptions,
): <This, I, O>(
  method: (this: This, items: I[]) => Promise<O[]> | O[],
  context: ClassMethodDecoratorContext<This>,
) => (this: This, item: I) => Promise<O>;
export function batch<I, O>(options: BatchOptions = {}, fn?: BatchedFn<I, O>): unknown {
  if (fn) {
    const queue = new BatchQueue<I, O>(fn.name || 'batch', fn, options);
    return (item: I) => queue.submit(item);
  }
  return <This extends object>(
    method: (this: This, items: I[]) => Promise<O[]> | O[],
    context: ClassMethodDecoratorContext<This>,
  ) => {
    const queues = new WeakMap<This, BatchQueue<I, O>>();
    const name = String(context.name);
    new BatchQueue<I, O>(name, () => [], options); // invalid options fail at the class, not at the first call
    return function (this: This, item: I): Promise<O> {
      let queue = queues.get(this);
      if (!queue) {
        queue = new BatchQueue<I, O>(name, (items) => method.call(this, items), options);
        queues.set(this, queue);
      }
      return queue.submit(item);
    };
  };
}
