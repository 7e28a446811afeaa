/**
 * The OpenAI-compatible HTTP surface as an ingress deployment: `GET /v1/models`,
 * `POST /v1/completions`, `POST /v1/chat/completions`, `POST /v1/embeddings`, routed by the
 * request's `model` to that model's `LLMServer`: through a handle, or in this process (see
 * `OpenAIModelServer`). Streams are SSE (`data: {...}` chunks, then `data: [DONE]`).
 */
import { randomUUID } from 'node:crypto';
import type { DeploymentHandle } from '../../serve/handle.ts';
import { response, type ServeRequest } from '../../serve/request.ts';
import type { ChatMessage, Embeddings, EngineStats, SamplingParams } from '../engine/types.ts';
import {
  LLMServer,
  type ServerEmbedRequest,
  type ServerEvent,
  type ServerGenerateRequest,
} from '../server.ts';
import {
  chatRequestSchema,
  completionRequestSchema,
  embeddingRequestSchema,
  OpenAIError,
  validationError,
} from './schemas.ts';

/** Completions default to OpenAI's 16 tokens; chat has no limit at OpenAI, here 256 unless asked. */
const COMPLETION_MAX_TOKENS = 16;
const CHAT_MAX_TOKENS = 256;

type Kind = 'completion' | 'chat';
type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };

/** What the ingress asks of one model's server, wherever that server runs. */
interface ModelServer {
  generate(request: ServerGenerateRequest): AsyncIterable<ServerEvent>;
  embed(request: ServerEmbedRequest): Promise<Embeddings>;
  stats(): Promise<EngineStats>;
}

function throughHandle(handle: DeploymentHandle<ModelServer>): ModelServer {
  return {
    generate: (request) => handle.generate.remote(request),
    embed: async (request) => await handle.embed.remote(request),
    stats: async () => await handle.stats.remote(),
  };
}

export class OpenAIIngress {
  readonly #servers: Record<string, ModelServer>;
  readonly #created = Math.floor(Date.now() / 1000);

  /** Each model's server: a handle to its deployment, or an `LLMServer` in this process. */
  constructor(servers: Record<string, DeploymentHandle<ModelServer> | LLMServer>) {
    this.#servers = Object.fromEntries(
      Object.entries(servers).map(([id, s]) => [id, s instanceof LLMServer ? s : throughHandle(s)]),
    );
  }

  async __call__(request: ServeRequest): Promise<unknown> {
    try {
      // Matched by suffix so the app works under any route prefix.
      const path = request.path.replace(/\/+$/, '');
      const is = (method: string, route: string) => request.method === method && path.endsWith(route);
      if (is('GET', '/v1/models')) return this.#models();
      if (is('POST', '/v1/completions') && !path.endsWith('/chat/completions'))
        return await this.#generate(request, 'completion');
      if (is('POST', '/v1/chat/completions')) return await this.#generate(request, 'chat');
      if (is('POST', '/v1/embeddings')) return await this.#embed(request);
      if (is('GET', '/v1/rayline/stats')) return await this.#stats(request);
      throw new OpenAIError(404, `no route ${request.method} ${request.path}`, { code: 'not_found' });
    } catch (error) {
      const e = toOpenAIError(error);
      return response(e.body, { status: e.status });
    }
  }

  #models() {
    return {
      object: 'list',
      data: Object.keys(this.#servers).map((id) => ({
        id,
        object: 'model',
        created: this.#created,
        owned_by: 'rayline',
      })),
    };
  }

  #server(model: string): ModelServer {
    const server = Object.hasOwn(this.#servers, model) ? this.#servers[model] : undefined;
    if (!server) {
      throw new OpenAIError(404, `The model '${model}' does not exist`, {
        param: 'model',
        code: 'model_not_found',
      });
    }
    return server;
  }

  /** Engine counters of one model's replica (the generated-token count shows that a cancel stopped work). */
  async #stats(request: ServeRequest) {
    const model = request.query.get('model') ?? '';
    return await this.#server(model).stats();
  }

  async #embed(request: ServeRequest): Promise<unknown> {
    const parsed = embeddingRequestSchema.safeParse(request.json<unknown>());
    if (!parsed.success) throw validationError(parsed.error);
    const req = parsed.data;
    const server = this.#server(req.model);
    let result: Embeddings;
    try {
      const dimensions = req.dimensions != null ? { dimensions: req.dimensions } : {};
      result = await server.embed({ input: req.input, ...dimensions });
    } catch (error) {
      // The engine refuses only inputs (empty, longer than the context): name the parameter.
      const e = error as { code?: string; message?: string };
      if (e?.code !== 'RL_BAD_REQUEST') throw error;
      throw new OpenAIError(400, `input: ${e.message}`, { param: 'input', code: 'invalid_value' });
    }
    const { vectors, promptTokens } = result;
    if (req.dimensions != null && vectors.some((v) => v.length !== req.dimensions)) {
      throw new OpenAIError(
        400,
        `dimensions: model '${req.model}' makes vectors of ${vectors[0]?.length} dimensions, not ${req.dimensions}`,
        { param: 'dimensions', code: 'invalid_value' },
      );
    }
    // base64: the little-endian float32 bytes, as OpenAI sends them (its npm client asks for it).
    const encode = (v: number[]) =>
      req.encoding_format === 'base64' ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v;
    return {
      object: 'list',
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })),
      model: req.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  }

  async #generate(request: ServeRequest, kind: Kind): Promise<unknown> {
    const body = request.json<unknown>();
    const parsed = (kind === 'chat' ? chatRequestSchema : completionRequestSchema).safeParse(body);
    if (!parsed.success) throw validationError(parsed.error);
    const req = parsed.data;
    const server = this.#server(req.model);
    const maxTokens =
      ('max_completion_tokens' in req ? req.max_completion_tokens : undefined) ??
      req.max_tokens ??
      (kind === 'chat' ? CHAT_MAX_TOKENS : COMPLETION_MAX_TOKENS);
    const sampling: SamplingParams = {
      temperature: req.temperature ?? 1,
      topP: req.top_p ?? 1,
      maxTokens,
      stop: req.stop,
      seed: req.seed ?? undefined,
      frequencyPenalty: req.frequency_penalty ?? 0,
      presencePenalty: req.presence_penalty ?? 0,
    };
    const call: ServerGenerateRequest =
      'messages' in req
        ? {
            messages: req.messages.map(
              (m): ChatMessage => ({ role: m.role === 'developer' ? 'system' : m.role, content: m.content }),
            ),
            sampling,
          }
        : { prompt: typeof req.prompt === 'string' ? req.prompt : req.prompt[0], sampling };
    const events = server.generate(call)[Symbol.asyncIterator]();
    // The first event is awaited here so that a failure (context overflow, model not loaded) answers
    // with its status instead of a broken stream.
    const first = await events.next();
    const meta = {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      created: Math.floor(Date.now() / 1000),
      model: req.model,
    };
    if (req.stream) {
      // The proxy frames strings as SSE itself when the client asked for text/event-stream; the
      // openai npm client does not ask, so then each chunk arrives here already framed.
      const framed = !(request.headers.accept ?? '').includes('text/event-stream');
      const frame = (data: string) => (framed ? `data: ${data}\n\n` : data);
      const chunks = streamChunks(kind, meta, first, events, req.stream_options?.include_usage === true);
      return response(mapIterable(chunks, frame), {
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      });
    }
    return await collect(kind, meta, first, events);
  }
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

function usageOf(done: Extract<ServerEvent, { type: 'done' }>): Usage {
  const { prompt_tokens, completion_tokens } = done.usage;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

async function collect(
  kind: Kind,
  meta: Meta,
  first: IteratorResult<ServerEvent>,
  events: AsyncIterator<ServerEvent>,
): Promise<unknown> {
  let text = '';
  let done: Extract<ServerEvent, { type: 'done' }> | undefined;
  for (let next = first; !next.done; next = await events.next()) {
    if (next.value.type === 'delta') text += next.value.text;
    else done = next.value;
  }
  if (!done) throw new OpenAIError(500, 'generation ended without a result');
  const usage = usageOf(done);
  if (kind === 'chat') {
    return {
      ...meta,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text },
          logprobs: null,
          finish_reason: done.finish_reason,
        },
      ],
      usage,
    };
  }
  return {
    ...meta,
    object: 'text_completion',
    choices: [{ index: 0, text, logprobs: null, finish_reason: done.finish_reason }],
    usage,
  };
}

/** OpenAI's stream chunks as JSON strings, ending with `[DONE]`. */
async function* streamChunks(
  kind: Kind,
  meta: Meta,
  first: IteratorResult<ServerEvent>,
  events: AsyncIterator<ServerEvent>,
  includeUsage: boolean,
): AsyncGenerator<string> {
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const chunk = (choice: Record<string, unknown>, finish: string | null) =>
    JSON.stringify({
      ...meta,
      object,
      choices: [{ index: 0, ...choice, logprobs: null, finish_reason: finish }],
    });
  try {
    if (kind === 'chat') yield chunk({ delta: { role: 'assistant', content: '' } }, null);
    for (let next = first; !next.done; next = await events.next()) {
      const event = next.value;
      if (event.type === 'delta') {
        if (event.text)
          yield chunk(kind === 'chat' ? { delta: { content: event.text } } : { text: event.text }, null);
        continue;
      }
      yield chunk(kind === 'chat' ? { delta: {} } : { text: '' }, event.finish_reason);
      if (includeUsage) yield JSON.stringify({ ...meta, object, choices: [], usage: usageOf(event) });
    }
    yield '[DONE]';
  } finally {
    // The client went away (or an error): stop the model's stream too.
    await events.return?.();
  }
}

async function* mapIterable<A, B>(source: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const a of source) yield f(a);
}

/** Rayline errors from the model's replica, in OpenAI's shape and status. */
function toOpenAIError(error: unknown): OpenAIError {
  if (error instanceof OpenAIError) return error;
  const e = error as { code?: string; statusCode?: number; message?: string };
  const message = e?.message ?? String(error);
  switch (e?.code) {
    case 'RL_BAD_REQUEST':
      return new OpenAIError(400, message, { code: 'invalid_value' });
    case 'RL_BACKPRESSURE':
      return new OpenAIError(429, message, { type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    case 'RL_UNAVAILABLE':
    case 'RL_REPLICA_DIED':
      return new OpenAIError(503, message, { type: 'server_error', code: 'service_unavailable' });
  }
  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 500;
  return new OpenAIError(status, message);
}
