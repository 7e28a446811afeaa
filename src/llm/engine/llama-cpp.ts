/**
 * The llama.cpp engine (node-llama-cpp): one model, one context with `parallel` sequences. Each
 * request takes a free sequence (waiting in FIFO order when none is free), so concurrent requests
 * are decoded in the same batches (continuous batching) instead of one after the other. Embeddings
 * use a second, embedding context, created on the first `embed` (generation-only models never pay for it).
 */
import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaContextSequenceRepeatPenalty,
  type LlamaEmbeddingContext,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';
import { RaylineError } from '../../errors.ts';
import { IncrementalDetokenizer, StopMatcher } from './stop.ts';
import type {
  ChatMessage,
  Embeddings,
  EmbedRequest,
  EngineStats,
  FinishReason,
  GenerateRequest,
  Generation,
  LLMEngine,
  SamplingParams,
  TextDelta,
  Usage,
} from './types.ts';

export interface LlamaCppOptions {
  modelPath: string;
  /** Tokens per sequence (prompt plus completion). */
  contextSize?: number;
  /** CPU threads for evaluation; more than the free cores makes llama.cpp's spinning workers crawl. */
  threads?: number;
  /** Layers offloaded to the GPU; 0 (the default) runs on the CPU. */
  gpuLayers?: number;
  /** Sequences decoded together. */
  parallel?: number;
}

export const LLAMA_CPP_DEFAULTS = { contextSize: 2048, threads: 1, gpuLayers: 0, parallel: 4 } as const;

/** Free sequences, handed out in request order. */
class SequencePool {
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

export class LlamaCppEngine implements LLMEngine {
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #pool: SequencePool;
  /** The options in effect, defaults filled in. */
  readonly options: Readonly<Required<LlamaCppOptions>>;
  #generated = 0;
  /** The model's chat format, resolved once from its metadata; undefined means the plain fallback. */
  readonly #chatWrapper: ChatWrapper | undefined;
  #active = 0;
  #embedding: Promise<LlamaEmbeddingContext> | undefined;

  private constructor(
    options: Required<LlamaCppOptions>,
    llama: Llama,
    model: LlamaModel,
    context: LlamaContext,
    sequences: LlamaContextSequence[],
  ) {
    this.options = options;
    this.#llama = llama;
    this.#model = model;
    this.#context = context;
    this.#pool = new SequencePool(sequences);
    try {
      // At load, not on the first chat request: reading the template takes hundreds of milliseconds.
      this.#chatWrapper = resolveChatWrapper(model);
    } catch {
      // No usable template: chats use the plain fallback.
    }
  }

  static async load(options: LlamaCppOptions): Promise<LlamaCppEngine> {
    // Options left undefined (absent from engine_kwargs) keep the defaults rather than erase them.
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    const o = { ...LLAMA_CPP_DEFAULTS, ...given } as Required<LlamaCppOptions>;
    // build: 'never': the prebuilt binaries or an error; a replica never downloads or compiles.
    const llama = await getLlama({
      gpu: o.gpuLayers > 0 ? 'auto' : false,
      build: 'never',
      maxThreads: o.threads,
      logLevel: LlamaLogLevel.error,
    });
    try {
      const model = await llama.loadModel({ modelPath: o.modelPath, gpuLayers: o.gpuLayers });
      const context = await model.createContext({
        contextSize: Math.min(o.contextSize, model.trainContextSize),
        sequences: o.parallel,
        threads: o.threads,
      });
      const sequences = Array.from({ length: o.parallel }, () => context.getSequence());
      return new LlamaCppEngine(o, llama, model, context, sequences);
    } catch (error) {
      await llama.dispose();
      throw new RaylineError(
        'RL_UNAVAILABLE',
        `loading model '${o.modelPath}' failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  get contextSize(): number {
    return this.#context.contextSize;
  }

  countTokens(text: string): number {
    return this.#model.tokenize(text).length;
  }

  #promptTokens(prompt: string | number[]): Token[] {
    if (typeof prompt !== 'string') return prompt as Token[];
    const tokens = this.#model.tokenize(prompt);
    const bos = this.#model.tokens.bos;
    return this.#model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
  }

  applyChatTemplate(messages: readonly ChatMessage[]): string | number[] {
    try {
      // The wrapper node-llama-cpp picks from the model's metadata (its Jinja chat template or a
      // known family); a trailing empty model turn asks for the generation prompt.
      const wrapper = this.#chatWrapper;
      if (!wrapper) return plainChatPrompt(messages);
      const { contextText } = wrapper.generateContextState({
        chatHistory: [
          ...messages.map((m) =>
            m.role === 'assistant'
              ? { type: 'model' as const, response: [m.content] }
              : { type: m.role === 'system' ? ('system' as const) : ('user' as const), text: m.content },
          ),
          { type: 'model', response: [] },
        ],
      });
      return contextText.tokenize(this.#model.tokenizer);
    } catch {
      return plainChatPrompt(messages);
    }
  }

  stats(): EngineStats {
    return {
      generatedTokens: this.#generated,
      activeRequests: this.#active,
      queuedRequests: this.#pool.waiting,
    };
  }

  generate(request: GenerateRequest): Generation {
    const {
      promise: final,
      resolve: settle,
      reject: fail,
    } = Promise.withResolvers<{ finishReason: FinishReason; usage: Usage }>();
    final.catch(() => {}); // a caller that only iterates must not see an unhandled rejection
    const engine = this;
    async function* run(): AsyncGenerator<TextDelta> {
      const { sampling, signal } = request;
      const input = engine.#promptTokens(request.prompt);
      const usage: Usage = { promptTokens: input.length, completionTokens: 0 };
      let finishReason: FinishReason = 'length';
      if (input.length + sampling.maxTokens > engine.contextSize) {
        const error = new RaylineError(
          'RL_BAD_REQUEST',
          `the prompt (${input.length} tokens) plus max_tokens (${sampling.maxTokens}) exceeds the context size of ${engine.contextSize} tokens`,
        );
        fail(error);
        throw error;
      }
      let sequence: LlamaContextSequence;
      try {
        sequence = await engine.#pool.acquire(signal);
      } catch (error) {
        fail(error);
        throw error;
      }
      engine.#active++;
      try {
        await sequence.clearHistory();
        const detokenizer = new IncrementalDetokenizer((t) => engine.#model.detokenize(t as Token[]));
        const stopper = new StopMatcher(sampling.stop);
        let unreported = 0;
        let stopped = false;
        // Kept only for the penalties, which look back over what was generated.
        const generated: Token[] = [];
        const repeatPenalty = penalties(sampling, generated);
        if (sampling.maxTokens > 0 && !signal?.aborted) {
          for await (const token of sequence.evaluate(input, {
            temperature: sampling.temperature,
            topP: sampling.topP,
            seed: sampling.seed,
            repeatPenalty,
          })) {
            if (signal?.aborted) break;
            if (engine.#model.isEogToken(token)) {
              finishReason = 'stop';
              break;
            }
            if (repeatPenalty) generated.push(token);
            usage.completionTokens++;
            engine.#generated++;
            unreported++;
            const piece = detokenizer.push(token);
            if (piece.text) {
              const { emit, stopped: hit } = stopper.push(piece.text);
              if (emit) {
                yield { text: emit, tokenCount: unreported };
                unreported = 0;
              }
              if (hit) {
                stopped = true;
                finishReason = 'stop';
                break;
              }
            }
            if (usage.completionTokens >= sampling.maxTokens) break;
          }
        }
        if (!stopped && !signal?.aborted) {
          const rest = detokenizer.flush();
          const pushed = rest.text ? stopper.push(rest.text) : { emit: '', stopped: false };
          if (pushed.stopped) finishReason = 'stop';
          const tail = pushed.emit + (pushed.stopped ? '' : stopper.flush());
          if (tail || unreported > 0) yield { text: tail, tokenCount: unreported };
        }
        settle({ finishReason, usage });
      } catch (error) {
        fail(error);
        throw error;
      } finally {
        // Also reached when the consumer stops iterating early (client gone): the sequence is free again.
        settle({ finishReason, usage });
        engine.#active--;
        engine.#pool.release(sequence);
      }
    }
    const iterable = run();
    return { final, [Symbol.asyncIterator]: () => iterable };
  }

  /**
   * One vector per input, L2-normalised as OpenAI's and vLLM's are: the model's pooled embedding
   * (llama.cpp's; the last token's hidden state for a decoder without a pooling type). Inputs run one
   * after the other on the embedding context; each counts its tokens as evaluated (BOS included).
   */
  async embed(request: EmbedRequest): Promise<Embeddings> {
    this.#embedding ??= this.#model.createEmbeddingContext({
      contextSize: this.#context.contextSize,
      threads: this.options.threads,
    });
    const context = await this.#embedding;
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const [i, text] of request.input.entries()) {
      request.signal?.throwIfAborted();
      if (!text) throw new RaylineError('RL_BAD_REQUEST', `input[${i}] is empty`);
      const tokens = context.calculateInputLength(text);
      if (tokens >= this.#context.contextSize) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          `input[${i}] has ${tokens} tokens, more than the context size of ${this.#context.contextSize} tokens allows`,
        );
      }
      const { vector } = await context.getEmbeddingFor(text);
      const norm = Math.sqrt(vector.reduce((n, x) => n + x * x, 0)) || 1;
      vectors.push(vector.map((x) => x / norm));
      promptTokens += tokens;
    }
    return { vectors, promptTokens };
  }

  /** The length of the model's embedding vectors. */
  get embeddingSize(): number {
    return this.#model.embeddingVectorSize;
  }

  async dispose(): Promise<void> {
    await (await this.#embedding?.catch(() => undefined))?.dispose();
    await this.#context.dispose();
    await this.#model.dispose();
    await this.#llama.dispose();
  }
}

/** Generated tokens the frequency and presence penalties look back over (llama.cpp counts a window). */
export const PENALTY_WINDOW = 256;

/** OpenAI's frequency and presence penalties as llama.cpp's penalties sampler, over the generated tokens. */
function penalties(
  sampling: SamplingParams,
  generated: Token[],
): LlamaContextSequenceRepeatPenalty | undefined {
  const { frequencyPenalty = 0, presencePenalty = 0 } = sampling;
  if (frequencyPenalty === 0 && presencePenalty === 0) return undefined;
  return {
    punishTokens: () => generated.slice(-PENALTY_WINDOW),
    maxPunishTokens: PENALTY_WINDOW,
    penalty: 1,
    frequencyPenalty,
    presencePenalty,
  };
}

/** The fallback chat format for models without a usable template. */
export function plainChatPrompt(messages: readonly ChatMessage[]): string {
  return `${messages.map((m) => `${m.role}: ${m.content}`).join('\n')}\nassistant:`;
}
