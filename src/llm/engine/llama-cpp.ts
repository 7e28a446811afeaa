/**
 * The llama.cpp engine (node-llama-cpp): one model, one context with `parallel` sequences. Each
 * request takes a free sequence (waiting in FIFO order when none is free), so concurrent requests
 * are decoded in the same batches (continuous batching) instead of one after the other. Embeddings
 * use a second, embedding context, created on the first `embed` (generation-only models never pay for it).
 * Structured outputs and forced tool calls generate under a grammar (grammars.ts), `auto` tool calls
 * are found in the text (tool-calls.ts), and LoRA adapters get contexts of their own (adapter-contexts.ts).
 */
import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaContextSequenceRepeatPenalty,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type LlamaModel,
  LlamaText,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';
import { RaylineError } from '../../errors.ts';
import { AdapterContexts } from './adapter-contexts.ts';
import { chatHistory, functionsOf, plainChatPrompt } from './chat-prompt.ts';
import { Grammars, vocabularySize } from './grammars.ts';
import { ANY_OBJECT, toGrammarSchema, UnsupportedSchemaError } from './json-schema.ts';
import { SequencePool } from './sequence-pool.ts';
import { IncrementalDetokenizer, StopMatcher } from './stop.ts';
import { forcedToolCallSchema, forcedToolCalls, ToolCallScanner, type ToolCallSyntax } from './tool-calls.ts';
import type {
  ChatMessage,
  Embeddings,
  EmbedRequest,
  EngineStats,
  FinishReason,
  GenerateRequest,
  Generation,
  JsonSchema,
  LLMEngine,
  SamplingParams,
  TextDelta,
  TokenLogprob,
  ToolCallDelta,
  ToolDefinition,
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
  /** LoRA adapters kept loaded at once (each in a context of its own). */
  maxAdapters?: number;
}

export const LLAMA_CPP_DEFAULTS = {
  contextSize: 2048,
  threads: 1,
  gpuLayers: 0,
  parallel: 4,
  maxAdapters: 16,
} as const;

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
  readonly #grammars: Grammars;
  readonly #adapters: AdapterContexts;

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
    this.#grammars = new Grammars(llama, model);
    this.#adapters = new AdapterContexts(model, {
      contextSize: context.contextSize,
      sequences: options.parallel,
      threads: options.threads,
      max: options.maxAdapters,
    });
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

  get #vocabularySize(): number {
    return vocabularySize(this.#model);
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

  async tokenize(text: string, addSpecial: boolean): Promise<number[]> {
    return addSpecial ? this.#promptTokens(text) : this.#model.tokenize(text);
  }

  async detokenize(tokens: readonly number[]): Promise<string> {
    const size = this.#vocabularySize;
    const bad = tokens.findIndex((t) => t >= size);
    if (bad !== -1)
      throw new RaylineError(
        'RL_BAD_REQUEST',
        `tokens.${bad}: ${tokens[bad]} is not in the vocabulary of ${size} tokens`,
      );
    return this.#model.detokenize(tokens as Token[]);
  }

  applyChatTemplate(messages: readonly ChatMessage[], tools?: readonly ToolDefinition[]): string | number[] {
    // The wrapper node-llama-cpp picks from the model's metadata (its Jinja chat template or a
    // known family); a trailing empty model turn asks for the generation prompt.
    const wrapper = this.#chatWrapper;
    const history = chatHistory(messages); // throws on a tool message that answers no call
    if (!wrapper) return plainChatPrompt(messages, tools);
    try {
      const last = history.at(-1);
      // After tool results the model's turn goes on; otherwise a new one starts.
      const open = last?.type === 'model' && messages.at(-1)?.role === 'tool';
      const { contextText } = wrapper.generateContextState({
        chatHistory: open ? history : [...history, { type: 'model', response: [] }],
        ...(tools?.length ? { availableFunctions: functionsOf(tools), documentFunctionParams: true } : {}),
      });
      return contextText.tokenize(this.#model.tokenizer);
    } catch {
      return plainChatPrompt(messages, tools);
    }
  }

  /** How the model's chat template writes a tool call (the plain fallback: `||call: name({...})`). */
  get toolCallSyntax(): ToolCallSyntax {
    const call = (this.#chatWrapper?.settings ?? undefined)?.functions.call;
    const text = (v: string | LlamaText | undefined, fallback: string) =>
      v === undefined ? fallback : typeof v === 'string' ? v : LlamaText(v).toString();
    return {
      prefix: text(call?.prefix, '||call: ').trimStart(),
      paramsPrefix: text(call?.paramsPrefix, '('),
      suffix: text(call?.suffix, ')'),
    };
  }

  /** The grammar a request's output is held to, if any; a schema the grammar cannot enforce is a bad request. */
  #grammarFor(request: GenerateRequest): Promise<LlamaGrammar> | undefined {
    const { tools, sampling } = request;
    let schema: JsonSchema | undefined;
    try {
      if (tools && (typeof tools.choice === 'object' || tools.choice === 'required'))
        schema = forcedToolCallSchema(tools);
      else if (sampling.constraint?.type === 'json_object') schema = ANY_OBJECT;
      else if (sampling.constraint?.type === 'json_schema')
        schema = toGrammarSchema(sampling.constraint.schema, 'response_format.json_schema.schema');
    } catch (error) {
      if (error instanceof UnsupportedSchemaError) throw new RaylineError('RL_BAD_REQUEST', error.message);
      throw error;
    }
    // Undefined, not a promise, without a schema: a request then reaches the sequence queue at once.
    return schema && this.#grammars.get(schema);
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
      const { sampling, signal, tools } = request;
      const input = engine.#promptTokens(request.prompt);
      const usage: Usage = { promptTokens: input.length, completionTokens: 0 };
      let finishReason: FinishReason = 'length';
      let sequence: LlamaContextSequence;
      let grammar: LlamaGrammar | undefined;
      let pool = engine.#pool;
      let adapter: { release: () => void } | undefined;
      try {
        if (input.length + sampling.maxTokens > engine.contextSize) {
          throw new RaylineError(
            'RL_BAD_REQUEST',
            `the prompt (${input.length} tokens) plus max_tokens (${sampling.maxTokens}) exceeds the context size of ${engine.contextSize} tokens`,
          );
        }
        const building = engine.#grammarFor(request);
        if (building) grammar = await building;
        if (request.adapter) {
          const held = await engine.#adapters.hold(request.adapter);
          adapter = held;
          pool = held.pool;
        }
        sequence = await pool.acquire(signal);
      } catch (error) {
        adapter?.release();
        fail(error);
        throw error;
      }
      engine.#active++;
      // `required` or a named function: the reply is the calls' JSON, given out as calls at the end.
      const forced = tools !== undefined && (tools.choice === 'required' || typeof tools.choice === 'object');
      const scanner =
        tools?.choice === 'auto'
          ? new ToolCallScanner(
              engine.toolCallSyntax,
              tools.definitions.map((d) => d.name),
              tools.parallel,
            )
          : undefined;
      try {
        await sequence.clearHistory();
        // With auto tool calls, special tokens are text too: templates write calls with them.
        const detokenizer = new IncrementalDetokenizer((t) =>
          engine.#model.detokenize(t as Token[], scanner !== undefined),
        );
        const stopper = new StopMatcher(forced ? [] : sampling.stop);
        let unreported = 0;
        let stopped = false;
        let forcedText = '';
        let logprobs: TokenLogprob[] = [];
        const toolCalls: ToolCallDelta[] = [];
        // Kept only for the penalties, which look back over what was generated.
        const generated: Token[] = [];
        const repeatPenalty = penalties(sampling, generated);
        /** The delta for text that may leave now, with the logprobs and calls gathered since the last. */
        const delta = (text: string): TextDelta | undefined => {
          let content = text;
          if (forced) {
            forcedText += text;
            content = '';
          } else if (scanner && text) {
            const scanned = scanner.push(text);
            content = scanned.content;
            toolCalls.push(...scanned.calls);
            if (scanned.done) stopped = true;
          }
          if (!content && unreported === 0 && toolCalls.length === 0) return undefined;
          const out: TextDelta = { text: content, tokenCount: unreported };
          if (sampling.logprobs !== undefined && content) {
            out.logprobs = logprobs;
            logprobs = [];
          }
          if (toolCalls.length > 0) out.toolCalls = toolCalls.splice(0);
          unreported = 0;
          return out;
        };
        if (sampling.maxTokens > 0 && !signal?.aborted) {
          const options = {
            temperature: sampling.temperature,
            topP: sampling.topP,
            seed: sampling.seed,
            repeatPenalty,
            ...(grammar
              ? {
                  grammarEvaluationState: new LlamaGrammarEvaluationState({ model: engine.#model, grammar }),
                  tokenBias: engine.#grammars.wholeCharacters,
                }
              : {}),
          };
          // node-llama-cpp ends the iteration itself once a grammar is complete: a natural stop.
          finishReason = 'stop';
          for await (const { token, confidence, probabilities } of engine.#tokens(
            sequence,
            input,
            options,
            sampling.logprobs,
          )) {
            if (signal?.aborted) break;
            if (engine.#model.isEogToken(token)) {
              finishReason = 'stop';
              break;
            }
            if (repeatPenalty) generated.push(token);
            if (confidence !== undefined)
              logprobs.push(engine.#logprob(token, confidence, probabilities, sampling.logprobs ?? 0));
            usage.completionTokens++;
            engine.#generated++;
            unreported++;
            const piece = detokenizer.push(token);
            if (piece.text) {
              const { emit, stopped: hit } = stopper.push(piece.text);
              const out = delta(emit);
              if (out) yield out;
              if (hit || stopped) {
                stopped = true;
                finishReason = 'stop';
                break;
              }
            }
            if (usage.completionTokens >= sampling.maxTokens) {
              finishReason = 'length';
              break;
            }
          }
        }
        if (!stopped && !signal?.aborted) {
          const rest = detokenizer.flush();
          const pushed = rest.text ? stopper.push(rest.text) : { emit: '', stopped: false };
          if (pushed.stopped) finishReason = 'stop';
          const tail = delta(pushed.emit + (pushed.stopped ? '' : stopper.flush()));
          if (tail) yield tail;
          const held = scanner?.flush();
          if (held && (held.content || held.calls.length > 0)) {
            yield {
              text: held.content,
              tokenCount: 0,
              ...(held.calls.length > 0 ? { toolCalls: held.calls } : {}),
              ...(held.content && logprobs.length ? { logprobs: logprobs.splice(0) } : {}),
            };
          }
        }
        if (forced && !signal?.aborted) {
          // Complete JSON (the grammar ended it): the calls; cut short by max_tokens: the text as it is.
          const calls = finishReason === 'stop' ? forcedToolCalls(tools, forcedText) : undefined;
          if (calls) {
            finishReason = 'tool_calls';
            yield { text: '', tokenCount: 0, toolCalls: calls.map((c, index) => ({ index, ...c })) };
          } else yield { text: forcedText, tokenCount: 0 };
        } else if (scanner && scanner.callCount > 0) finishReason = 'tool_calls';
        settle({ finishReason, usage });
      } catch (error) {
        fail(error);
        throw error;
      } finally {
        // Also reached when the consumer stops iterating early (client gone): the sequence is free again.
        settle({ finishReason, usage });
        engine.#active--;
        pool.release(sequence);
        adapter?.release();
      }
    }
    const iterable = run();
    return { final, [Symbol.asyncIterator]: () => iterable };
  }

  /** Generated tokens, with the distribution they were sampled from when logprobs are asked for. */
  /**
   * Generated tokens; with logprobs asked for, each with its probability and, for alternatives, the
   * distribution it was sampled from (only then: that costs a map of the whole vocabulary per token).
   */
  async *#tokens(
    sequence: LlamaContextSequence,
    input: Token[],
    options: Parameters<LlamaContextSequence['evaluate']>[1],
    logprobs: number | undefined,
  ): AsyncGenerator<{ token: Token; confidence?: number; probabilities?: Map<Token, number> }> {
    if (logprobs === undefined) {
      for await (const token of sequence.evaluate(input, options)) yield { token };
    } else if (logprobs === 0) {
      yield* sequence.evaluateWithMetadata(input, { confidence: true }, options);
    } else {
      yield* sequence.evaluateWithMetadata(input, { confidence: true, probabilities: true }, options);
    }
  }

  /** A token's log probability and the `top` most likely tokens at its position. */
  #logprob(
    token: Token,
    confidence: number,
    probabilities: Map<Token, number> | undefined,
    top: number,
  ): TokenLogprob {
    const entry = (t: Token, p: number) => {
      const text = this.#model.detokenize([t]);
      return { token: text, logprob: Math.log(p), bytes: [...Buffer.from(text, 'utf8')] };
    };
    const alternatives = [];
    for (const [t, p] of probabilities ?? []) {
      if (alternatives.length >= top) break;
      alternatives.push(entry(t, p));
    }
    return { ...entry(token, confidence), top: alternatives };
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

  /** The files of the LoRA adapters loaded now, most recently used first. */
  loadedAdapters(): string[] {
    return this.#adapters.loaded();
  }

  async dispose(): Promise<void> {
    await this.#adapters.dispose();
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

export { plainChatPrompt };
