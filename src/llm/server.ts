/**
 * `LLMServer`: one model's engine. It loads the model at start (a missing source fails the start
 * with the source's name) and streams generation events, which the OpenAI surface turns into
 * responses (in the same process, `OpenAIModelServer`, or through a handle); the caller's
 * cancellation stops generation. It also embeds, and records the LLM metrics (src/llm/metrics.ts)
 * of what it serves.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { RaylineError } from '../errors.ts';
import { getRequestContext } from '../serve/context.ts';
import type { LLMConfig, LLMConfigInput } from './config.ts';
import { engineKwargsSchema, llmConfigSchema, upstreamEngineKwargsSchema } from './config.ts';
import { coalesce } from './engine/coalesce.ts';
import { LlamaCppEngine } from './engine/llama-cpp.ts';
import { OpenAIUpstreamEngine } from './engine/openai-upstream.ts';
import type {
  ChatMessage,
  Embeddings,
  EngineStats,
  FinishReason,
  LLMEngine,
  SamplingParams,
  TokenLogprob,
  ToolCallDelta,
  ToolsRequest,
} from './engine/types.ts';
import { GenerationMetrics, recordEmbedding } from './metrics.ts';
import { isRemoteSource, modelPath, parseModelSource } from './model-source.ts';

export interface ServerGenerateRequest {
  /** A prompt as it is, or chat messages formatted with the model's chat template. */
  prompt?: string;
  messages?: ChatMessage[];
  sampling: SamplingParams;
  /** Functions the model may call (chats only). */
  tools?: ToolsRequest;
  /** The client's session: calls with the same one go to the same replica (session-affinity.ts). */
  session?: string;
  /** A LoRA adapter of this model (`MODEL_ID:ADAPTER`), by name. */
  adapter?: string;
}

/** Adapter names: a file name without folders. */
const ADAPTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface ServerEmbedRequest {
  input: string[];
  dimensions?: number;
  /** Routes like a generation's session. */
  session?: string;
}

export type ServerEvent =
  | {
      type: 'delta';
      text: string;
      tokens: number;
      logprobs?: TokenLogprob[];
      tool_calls?: ToolCallDelta[];
    }
  | {
      type: 'done';
      finish_reason: FinishReason;
      usage: { prompt_tokens: number; completion_tokens: number };
    };

export class LLMServer {
  readonly modelId: string;
  readonly #streamBatchingMs: number;
  readonly #lora: LLMConfig['lora_config'];
  /** Adapter files by name, resolved (and downloaded) once. */
  readonly #adapterFiles = new Map<string, Promise<string>>();
  readonly #engine: Promise<LLMEngine>;
  #loaded: LLMEngine | undefined;
  #loadError: unknown;

  constructor(config: LLMConfigInput) {
    const c = llmConfigSchema.parse(config);
    this.modelId = c.model_loading_config.model_id;
    this.#streamBatchingMs = c.experimental_configs.stream_batching_interval_ms;
    this.#lora = c.lora_config;
    this.#engine = c.engine === 'openai-upstream' ? startUpstream(c) : loadLlamaCpp(c);
    this.#engine.then(
      (engine) => {
        this.#loaded = engine;
      },
      (error: unknown) => {
        this.#loadError = error;
      },
    );
  }

  /**
   * Called at start with the deployment's user_config (the builder gives every model one), so the
   * replica is ready only once its engine is: a model that cannot load fails the deployment.
   */
  async reconfigure(_userConfig: unknown): Promise<void> {
    await this.#engine;
  }

  async #ready(): Promise<LLMEngine> {
    try {
      return await this.#engine;
    } catch (error) {
      throw new RaylineError(
        'RL_UNAVAILABLE',
        `model '${this.modelId}' is not available: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  async *generate(request: ServerGenerateRequest): AsyncGenerator<ServerEvent> {
    const metrics = new GenerationMetrics(this.modelId);
    const engine = await this.#ready();
    const { signal } = getRequestContext();
    const adapter = request.adapter === undefined ? undefined : await this.#adapterFile(request.adapter);
    // tool_choice none: the model is not shown the tools, so it cannot write a call.
    const tools = request.tools?.choice === 'none' ? undefined : request.tools;
    // An upstream server applies its own chat template: chats go to it as messages.
    const generation =
      request.messages && engine instanceof OpenAIUpstreamEngine
        ? engine.generateChat(request.messages, request.sampling, signal, request.tools)
        : engine.generate({
            prompt: request.messages
              ? engine.applyChatTemplate(request.messages, tools?.definitions)
              : (request.prompt ?? ''),
            sampling: request.sampling,
            tools,
            signal,
            ...(adapter ? { adapter } : {}),
          });
    let counted = false;
    try {
      for await (const delta of coalesce(metrics.tokens(generation), this.#streamBatchingMs)) {
        yield {
          type: 'delta',
          text: delta.text,
          tokens: delta.tokenCount,
          ...(delta.logprobs ? { logprobs: delta.logprobs } : {}),
          ...(delta.toolCalls ? { tool_calls: delta.toolCalls } : {}),
        };
      }
      const { finishReason, usage } = await generation.final;
      counted = true;
      metrics.finish(usage, signal?.aborted ? 'abort' : finishReason);
      yield {
        type: 'done',
        finish_reason: finishReason,
        usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens },
      };
    } finally {
      // The caller left early: what was generated until then still counts.
      if (!counted)
        generation.final.then(
          ({ usage }) => metrics.finish(usage, 'abort'),
          () => {},
        );
    }
  }

  /** One vector per input, in order, with the inputs' token count. */
  async embed(request: ServerEmbedRequest): Promise<Embeddings> {
    const engine = await this.#ready();
    const { signal } = getRequestContext();
    const { session: _, ...rest } = request;
    const result = await engine.embed({ ...rest, signal });
    recordEmbedding(this.modelId, result.promptTokens);
    return result;
  }

  /** The GGUF file of adapter `name`: `NAME.gguf` under the dynamic loading path, fetched once. */
  #adapterFile(name: string): Promise<string> {
    const id = `${this.modelId}:${name}`;
    if (!this.#lora) {
      return Promise.reject(
        new RaylineError(
          'RL_BAD_REQUEST',
          `model: '${id}' names a LoRA adapter, but model '${this.modelId}' has no lora_config`,
        ),
      );
    }
    if (!ADAPTER_NAME.test(name)) {
      return Promise.reject(
        new RaylineError(
          'RL_BAD_REQUEST',
          `model: '${name}' is not an adapter name (letters, digits, _, . and -)`,
        ),
      );
    }
    let file = this.#adapterFiles.get(name);
    if (!file) {
      const root = this.#lora.dynamic_lora_loading_path.replace(/\/+$/, '');
      const source = `${root}/${name}.gguf`;
      file = Promise.resolve()
        .then(() => {
          if (!isRemoteSource(root) && !existsSync(source)) {
            throw new Error(`no ${name}.gguf in dynamic_lora_loading_path '${root}'`);
          }
          return modelPath(parseModelSource(source));
        })
        .catch((error: unknown) => {
          this.#adapterFiles.delete(name);
          throw new RaylineError(
            'RL_NOT_FOUND',
            `model: LoRA adapter '${id}' not found: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        });
      this.#adapterFiles.set(name, file);
    }
    return file;
  }

  /**
   * The adapters this model can serve by name: those in a local dynamic loading path, and those
   * loaded (a remote path cannot be listed).
   */
  async adapters(): Promise<string[]> {
    if (!this.#lora) return [];
    const names = new Set<string>();
    const root = this.#lora.dynamic_lora_loading_path;
    if (!isRemoteSource(root) && existsSync(root)) {
      for (const f of await readdir(root)) if (f.endsWith('.gguf')) names.add(f.slice(0, -'.gguf'.length));
    }
    if (this.#loaded instanceof LlamaCppEngine) {
      for (const file of this.#loaded.loadedAdapters()) {
        for (const [name, resolved] of this.#adapterFiles)
          if ((await resolved.catch(() => '')) === file) names.add(name);
      }
    }
    return [...names].filter((n) => ADAPTER_NAME.test(n)).sort();
  }

  async countTokens(text: string): Promise<number> {
    return (await this.#ready()).countTokens(text);
  }

  /** vLLM's `/tokenize`: a prompt's token ids, or a chat's as the template formats it. */
  async tokenize(request: {
    prompt?: string;
    messages?: ChatMessage[];
    addSpecial?: boolean;
  }): Promise<number[]> {
    const engine = await this.#ready();
    if (request.messages) {
      if (engine instanceof OpenAIUpstreamEngine) return await engine.tokenizeChat(request.messages);
      const prompt = engine.applyChatTemplate(request.messages);
      return typeof prompt === 'string' ? await engine.tokenize(prompt, true) : prompt;
    }
    return await engine.tokenize(request.prompt ?? '', request.addSpecial ?? true);
  }

  async detokenize(tokens: number[]): Promise<string> {
    return await (await this.#ready()).detokenize(tokens);
  }

  async stats(): Promise<EngineStats> {
    return (await this.#ready()).stats();
  }

  checkHealth(): void {
    if (this.#loadError) throw this.#loadError;
    if (this.#loaded instanceof OpenAIUpstreamEngine) this.#loaded.checkHealth();
  }
}

function loadLlamaCpp(c: LLMConfig): Promise<LLMEngine> {
  const source = parseModelSource(c.model_loading_config.model_source);
  const kw = engineKwargsSchema.parse(c.engine_kwargs);
  return modelPath(source).then((path) =>
    LlamaCppEngine.load({
      modelPath: path,
      contextSize: kw.n_ctx,
      threads: kw.threads,
      gpuLayers: kw.n_gpu_layers,
      parallel: kw.parallel,
      maxAdapters: c.lora_config?.max_num_adapters_per_replica,
    }),
  );
}

function startUpstream(c: LLMConfig): Promise<LLMEngine> {
  const kw = upstreamEngineKwargsSchema.parse(c.engine_kwargs);
  return OpenAIUpstreamEngine.start({
    model: c.model_loading_config.model_source,
    baseUrl: kw.base_url,
    apiKey: kw.api_key,
    command: kw.command,
    port: kw.port,
    healthPath: kw.health_path,
    startupTimeoutS: kw.startup_timeout_s,
  });
}
