/** Free sequences of one llama.cpp context, handed out in request order. */
import type { LlamaContextSequence } from 'node-llama-cpp';
import { RaylineError } from '../../errors.ts';

export class SequencePool {
  readonly #free: LlamaContextSequence[];
  readonly #waiters: Array<{ resolve: (s: LlamaContextSequence) => void }> = [];

  constructor(sequences: LlamaContextSequence[]) {
    this.#free = [...sequences];
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  acquire(signal?: AbortSignal): Promise<LlamaContextSequence> {
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    return new Promise((resolve, reject) => {
      const waiter = { resolve };
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        reject(signal?.reason ?? new RaylineError('RL_CANCELLED', 'generation cancelled'));
      };
      waiter.resolve = (s) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release(sequence: LlamaContextSequence): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(sequence);
    else this.#free.push(sequence);
  }
}
