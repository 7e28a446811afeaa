/**
 * LoRA adapters on the llama.cpp engine. node-llama-cpp applies adapters per context, so each
 * adapter in use gets a context of its own (with its own sequences and KV cache), created on first
 * use and kept for the next requests; past `max` adapters, the least recently used one that runs
 * nothing is disposed (node-llama-cpp keeps an adapter's weights until the model is disposed; its
 * context, the larger part, goes).
 */
import type { LlamaContext, LlamaModel } from 'node-llama-cpp';
import { RaylineError } from '../../errors.ts';
import { SequencePool } from './sequence-pool.ts';

interface Entry {
  context: Promise<{ context: LlamaContext; pool: SequencePool }>;
  /** Requests holding a sequence or waiting for one. */
  users: number;
  lastUsed: number;
}

export interface AdapterContextOptions {
  contextSize: number;
  sequences: number;
  threads: number;
  /** Adapters kept at once (Ray Serve LLM's max_num_adapters_per_replica). */
  max: number;
}

export class AdapterContexts {
  readonly #model: LlamaModel;
  readonly #options: AdapterContextOptions;
  readonly #entries = new Map<string, Entry>();
  #clock = 0;

  constructor(model: LlamaModel, options: AdapterContextOptions) {
    this.#model = model;
    this.#options = options;
  }

  /** The adapters' files whose contexts are loaded (or loading), most recently used first. */
  loaded(): string[] {
    return [...this.#entries.entries()].sort(([, a], [, b]) => b.lastUsed - a.lastUsed).map(([path]) => path);
  }

  /**
   * The sequence pool of the adapter's context, held until `release`: a held adapter is never
   * evicted. A file llama.cpp cannot load as an adapter of this model is a bad request.
   */
  async hold(path: string): Promise<{ pool: SequencePool; release: () => void }> {
    let entry = this.#entries.get(path);
    if (!entry) {
      this.#evict();
      entry = { context: this.#create(path), users: 0, lastUsed: 0 };
      this.#entries.set(path, entry);
    }
    entry.users++;
    entry.lastUsed = ++this.#clock;
    const held = entry;
    const release = () => {
      held.users--;
    };
    try {
      const { pool } = await held.context;
      return { pool, release };
    } catch (error) {
      release();
      if (this.#entries.get(path) === held) this.#entries.delete(path);
      throw error;
    }
  }

  async #create(path: string): Promise<{ context: LlamaContext; pool: SequencePool }> {
    const { contextSize, sequences, threads } = this.#options;
    let context: LlamaContext;
    try {
      context = await this.#model.createContext({
        contextSize,
        sequences,
        threads,
        lora: { adapters: [{ filePath: path }] },
      });
    } catch (error) {
      throw new RaylineError(
        'RL_BAD_REQUEST',
        `model: the LoRA adapter ${path} could not be loaded: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return {
      context,
      pool: new SequencePool(Array.from({ length: sequences }, () => context.getSequence())),
    };
  }

  /** Makes room for one more: the least recently used adapter that nothing holds goes. */
  #evict(): void {
    if (this.#entries.size < this.#options.max) return;
    let victim: [string, Entry] | undefined;
    for (const e of this.#entries)
      if (e[1].users === 0 && (!victim || e[1].lastUsed < victim[1].lastUsed)) victim = e;
    if (!victim) return; // all busy: one more than max for now
    this.#entries.delete(victim[0]);
    void victim[1].context.then(
      ({ context }) => context.dispose(),
      () => {},
    );
  }

  async dispose(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(entries.map(async (e) => (await e.context).context.dispose()));
  }
}
