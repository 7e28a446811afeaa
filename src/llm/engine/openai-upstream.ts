/**
 * The `openai-upstream` engine: generation is delegated to an OpenAI-compatible server, either one
 * already running (`base_url`) or one this replica starts (`command`, e.g. `vllm serve ...`), waits
 * for and kills when it stops. Requests stream through `/v1/completions` or `/v1/chat/completions`
 * with `stream: true`; embeddings through `/v1/embeddings` (as floats). Aborting the caller's signal
 * aborts the upstream request.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RaylineError } from '../../errors.ts';
import {
  logprobsOf,
  openAIMessage,
  type StreamChunk,
  type UpstreamInput,
  upstreamParams,
} from './openai-wire.ts';
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
  ToolCallDelta,
  ToolDefinition,
  ToolsRequest,
  Usage,
} from './types.ts';

export interface OpenAIUpstreamOptions {
  /** The name the upstream knows the model by (sent as `model`). */
  model: string;
  /** `http://host:port/v1` of a running server; or leave it out and give `command`. */
  baseUrl?: string;
  apiKey?: string;
  /** The server to start, argv style; `CUDA_VISIBLE_DEVICES` and the rest of the env pass through. */
  command?: string[];
  /** Where the started server listens (default 8000, vLLM's). */
  port?: number;
  /** Polled until it answers 2xx: `/health` (vLLM) or `/v1/models`. */
  healthPath?: string;
  startupTimeoutS?: number;
}

/** Lines of the started server's output kept for error messages. */
const OUTPUT_LINES = 20;

type Input = UpstreamInput;

export class OpenAIUpstreamEngine implements LLMEngine {
  readonly baseUrl: string;
  readonly #model: string;
  readonly #apiKey: string | undefined;
  readonly #process: UpstreamProcess | undefined;
  #generated = 0;
  #active = 0;

  private constructor(options: OpenAIUpstreamOptions, baseUrl: string, process?: UpstreamProcess) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#model = options.model;
    this.#apiKey = options.apiKey;
    this.#process = process;
  }

  /** Connects to `baseUrl`, or starts `command` and resolves once its health endpoint answers. */
  static async start(options: OpenAIUpstreamOptions): Promise<OpenAIUpstreamEngine> {
    if (options.baseUrl) return new OpenAIUpstreamEngine(options, options.baseUrl);
    if (!options.command?.length) {
      throw new RaylineError('RL_CONFIG_INVALID', 'openai-upstream needs base_url or command');
    }
    const port = options.port ?? 8000;
    const upstream = new UpstreamProcess(options.command);
    try {
      await upstream.waitHealthy(
        `http://127.0.0.1:${port}${options.healthPath ?? '/health'}`,
        (options.startupTimeoutS ?? 600) * 1000,
      );
    } catch (error) {
      await upstream.kill();
      throw error;
    }
    return new OpenAIUpstreamEngine(options, `http://127.0.0.1:${port}/v1`, upstream);
  }

  /** The pid of the started server, if this engine started one. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Throws once a started server has exited: the replica is then unhealthy. */
  checkHealth(): void {
    this.#process?.throwIfExited();
  }

  /**
   * An estimate (about 4 bytes a token, as for English BPE vocabularies): the interface is
   * synchronous and OpenAI's API has no tokenizer endpoint. Usage figures come from the upstream.
   */
  countTokens(text: string): number {
    return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
  }

  /** The messages themselves: the upstream applies its model's chat template. */
  applyChatTemplate(messages: readonly ChatMessage[], _tools?: readonly ToolDefinition[]): string | number[] {
    return JSON.stringify(messages);
  }

  /** The upstream's own `/tokenize` (vLLM's, beside `/v1`). */
  async tokenize(text: string, addSpecial: boolean): Promise<number[]> {
    return await this.#tokenize({ prompt: text, add_special_tokens: addSpecial });
  }

  /** A chat's tokens as the upstream's chat template formats it. */
  async tokenizeChat(messages: readonly ChatMessage[]): Promise<number[]> {
    return await this.#tokenize({ messages: messages.map(openAIMessage), add_generation_prompt: true });
  }

  async #tokenize(body: Record<string, unknown>): Promise<number[]> {
    const response = await this.#post('/tokenize', { model: this.#model, ...body }, undefined, true);
    return ((await response.json()) as { tokens: number[] }).tokens;
  }

  async detokenize(tokens: readonly number[]): Promise<string> {
    const response = await this.#post('/detokenize', { model: this.#model, tokens }, undefined, true);
    return ((await response.json()) as { prompt: string }).prompt;
  }

  stats(): EngineStats {
    return { generatedTokens: this.#generated, activeRequests: this.#active, queuedRequests: 0 };
  }

  generate(request: GenerateRequest): Generation {
    return this.#stream({ prompt: request.prompt }, request.sampling, request.signal);
  }

  /** A chat through the upstream's `/v1/chat/completions`, so its own chat template applies. */
  generateChat(
    messages: readonly ChatMessage[],
    sampling: SamplingParams,
    signal?: AbortSignal,
    tools?: ToolsRequest,
  ): Generation {
    return this.#stream({ messages, tools }, sampling, signal);
  }

  async embed(request: EmbedRequest): Promise<Embeddings> {
    const response = await this.#post(
      '/embeddings',
      {
        model: this.#model,
        input: request.input,
        encoding_format: 'float',
        ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
      },
      request.signal,
    );
    const body = (await response.json()) as {
      data?: Array<{ index: number; embedding: number[] }>;
      usage?: { prompt_tokens?: number };
    };
    const data = [...(body.data ?? [])].sort((a, b) => a.index - b.index);
    if (data.length !== request.input.length || !data.every((d) => Array.isArray(d.embedding))) {
      throw new RaylineError(
        'RL_UNAVAILABLE',
        `upstream ${this.baseUrl} answered ${data.length} embeddings for ${request.input.length} inputs`,
      );
    }
    return { vectors: data.map((d) => d.embedding), promptTokens: body.usage?.prompt_tokens ?? 0 };
  }

  #stream(input: Input, sampling: SamplingParams, signal?: AbortSignal): Generation {
    const {
      promise: final,
      resolve: settle,
      reject: fail,
    } = Promise.withResolvers<{ finishReason: FinishReason; usage: Usage }>();
    final.catch(() => {}); // a caller that only iterates must not see an unhandled rejection
    const engine = this;
    const chat = 'messages' in input;
    async function* run(): AsyncGenerator<TextDelta> {
      const usage: Usage = { promptTokens: 0, completionTokens: 0 };
      let finishReason: FinishReason = 'length';
      let reported: Usage | undefined;
      engine.#active++;
      try {
        const response = await engine.#post(
          chat ? '/chat/completions' : '/completions',
          {
            model: engine.#model,
            ...(chat ? { messages: input.messages.map(openAIMessage) } : { prompt: input.prompt }),
            ...upstreamParams(input, sampling),
            temperature: sampling.temperature,
            top_p: sampling.topP,
            max_tokens: sampling.maxTokens,
            ...(sampling.stop.length > 0 ? { stop: sampling.stop } : {}),
            ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
            ...(sampling.frequencyPenalty ? { frequency_penalty: sampling.frequencyPenalty } : {}),
            ...(sampling.presencePenalty ? { presence_penalty: sampling.presencePenalty } : {}),
            n: 1,
            stream: true,
            stream_options: { include_usage: true },
          },
          signal,
        );
        for await (const data of sseData(response.body!)) {
          if (data === '[DONE]') break;
          const chunk = JSON.parse(data) as StreamChunk;
          if (chunk.usage) {
            reported = {
              promptTokens: chunk.usage.prompt_tokens,
              completionTokens: chunk.usage.completion_tokens,
            };
          }
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          if (
            choice.finish_reason === 'stop' ||
            choice.finish_reason === 'length' ||
            choice.finish_reason === 'tool_calls'
          )
            finishReason = choice.finish_reason;
          const text = (chat ? choice.delta?.content : choice.text) ?? '';
          const toolCalls = choice.delta?.tool_calls?.map(
            (c): ToolCallDelta => ({
              index: c.index,
              ...(c.id ? { id: c.id } : {}),
              ...(c.function?.name ? { name: c.function.name } : {}),
              arguments: c.function?.arguments ?? '',
            }),
          );
          const logprobs = logprobsOf(choice.logprobs);
          if (!text && !toolCalls?.length) continue;
          // One chunk is one token at vLLM; an upstream that merges tokens is corrected by its usage.
          usage.completionTokens++;
          engine.#generated++;
          yield {
            text,
            tokenCount: 1,
            ...(logprobs ? { logprobs } : {}),
            ...(toolCalls?.length ? { toolCalls } : {}),
          };
        }
        if (reported) {
          engine.#generated += reported.completionTokens - usage.completionTokens;
          Object.assign(usage, reported);
        }
        settle({ finishReason, usage });
      } catch (error) {
        // The caller went away: end quietly, as the llama.cpp engine does.
        if (signal?.aborted) return settle({ finishReason, usage });
        fail(error);
        throw error;
      } finally {
        settle({ finishReason, usage });
        engine.#active--;
      }
    }
    const iterable = run();
    return { final, [Symbol.asyncIterator]: () => iterable };
  }

  /** `root`: at the server's root (vLLM's `/tokenize`), not under `/v1`. */
  async #post(path: string, body: unknown, signal?: AbortSignal, root = false): Promise<Response> {
    let response: Response;
    const base = root ? this.baseUrl.replace(/\/v1$/, '') : this.baseUrl;
    try {
      response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      this.#process?.throwIfExited();
      throw new RaylineError(
        'RL_UNAVAILABLE',
        `upstream ${this.baseUrl} unreachable: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (response.ok && response.body) return response;
    const text = await response.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // Not JSON: the body as it is.
    }
    // The upstream's 400 (a bad value, a prompt too long) and 429 keep their meaning for the client.
    const code =
      response.status === 400
        ? 'RL_BAD_REQUEST'
        : response.status === 429
          ? 'RL_BACKPRESSURE'
          : 'RL_UNAVAILABLE';
    throw new RaylineError(code, `upstream answered ${response.status}: ${message}`);
  }

  async dispose(): Promise<void> {
    await this.#process?.kill();
  }
}

/** The `data:` payloads of a server-sent event stream. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    for (let end = buffer.search(/\r?\n\r?\n/); end !== -1; end = buffer.search(/\r?\n\r?\n/)) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) yield data;
    }
  }
}

/**
 * A server this replica started, in its own process group so that its workers go with it. It is
 * killed when the engine is disposed and, synchronously, when the replica process exits.
 */
class UpstreamProcess {
  readonly #child: ChildProcess;
  readonly #command: string[];
  readonly #output: string[] = [];
  readonly #exited: Promise<void>;
  #exit: string | undefined;
  readonly #onExit = () => this.#killNow();

  constructor(command: string[]) {
    this.#command = command;
    this.#child = spawn(command[0], command.slice(1), {
      // The replica's env, CUDA_VISIBLE_DEVICES from its placement included, passes through.
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        // Also the replica's log, where operators look.
        process.stderr.write(text);
        this.#output.push(...text.split('\n').filter(Boolean));
        if (this.#output.length > OUTPUT_LINES) this.#output.splice(0, this.#output.length - OUTPUT_LINES);
      });
    }
    this.#exited = new Promise((resolve) => {
      this.#child.once('error', (error) => {
        this.#exit ??= `could not start: ${error.message}`;
        resolve();
      });
      this.#child.once('exit', (code, signal) => {
        this.#exit ??= signal ? `was killed (${signal})` : `exited with code ${code}`;
        process.off('exit', this.#onExit);
        resolve();
      });
    });
    process.on('exit', this.#onExit);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  #error(what: string): RaylineError {
    const tail = this.#output.length ? `; its last output:\n${this.#output.join('\n')}` : '';
    return new RaylineError('RL_UNAVAILABLE', `upstream command '${this.#command.join(' ')}' ${what}${tail}`);
  }

  throwIfExited(): void {
    if (this.#exit !== undefined) throw this.#error(this.#exit);
  }

  async waitHealthy(url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.#exited.then(() => {
      exited = true;
    });
    while (!exited) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() >= deadline) throw this.#error(`was not healthy at ${url} within ${timeoutMs / 1000} s`);
      await Promise.race([this.#exited, new Promise((resolve) => setTimeout(resolve, 200))]);
    }
    throw this.#error(this.#exit ?? 'exited');
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined || this.#exit !== undefined) return;
    try {
      process.kill(-pid, signal); // the group: the server and whatever it started
    } catch {
      // Already gone.
    }
  }

  /** At replica exit: no event loop any more, so a TERM, a short synchronous wait, then a KILL. */
  #killNow(): void {
    const pid = this.#child.pid;
    if (pid === undefined || this.#exit !== undefined) return;
    this.#signal('SIGTERM');
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; waited < 3000 && running(pid); waited += 50) Atomics.wait(pause, 0, 0, 50);
    this.#signal('SIGKILL');
  }

  /** TERM, then KILL after five seconds; resolves when it has exited. */
  async kill(): Promise<void> {
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Whether a child not yet reaped still runs (a zombie has exited): Linux's /proc, else kill(0). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return !process.platform.startsWith('linux');
    } catch {
      return false;
    }
  }
}
