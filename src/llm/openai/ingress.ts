/**
 * The OpenAI-compatible HTTP surface as an ingress deployment: `GET /v1/models`,
 * `POST /v1/completions`, `POST /v1/chat/completions`, `POST /v1/embeddings`, and vLLM's
 * `POST /tokenize` and `/detokenize`, routed by the request's `model` to that model's `LLMServer`:
 * through a handle, or in this process (see `OpenAIModelServer`). Streams are SSE (`data: {...}`
 * chunks, then `data: [DONE]`).
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { DeploymentHandle } from '../../serve/handle.ts';
import { response, type ServeRequest } from '../../serve/request.ts';
import type {
  ChatMessage,
  Embeddings,
  EngineStats,
  OutputConstraint,
  SamplingParams,
  ToolsRequest,
} from '../engine/types.ts';
import {
  LLMServer,
  type ServerEmbedRequest,
  type ServerEvent,
  type ServerGenerateRequest,
} from '../server.ts';
import { collect, type Kind, type Run, streamChunks } from './responses.ts';
import {
  badParam,
  type ChatRequest,
  type ChatRequestMessage,
  chatRequestSchema,
  completionRequestSchema,
  detokenizeRequestSchema,
  embeddingRequestSchema,
  OpenAIError,
  refuseUnsupported,
  tokenizeRequestSchema,
  validationError,
} from './schemas.ts';

/** Completions default to OpenAI's 16 tokens; chat has no limit at OpenAI, here 256 unless asked. */
const COMPLETION_MAX_TOKENS = 16;
/** How long `/v1/models` waits for a model's replicas to list its LoRA adapters. */
const ADAPTERS_WAIT_MS = 2000;
/** The header that names a client's session (Ray Serve LLM's); `user` or `prompt_cache_key` otherwise. */
const SESSION_HEADER = 'x-session-id';
const CHAT_MAX_TOKENS = 256;

/** What the ingress asks of one model's server, wherever that server runs. */
interface ModelServer {
  generate(request: ServerGenerateRequest): AsyncIterable<ServerEvent>;
  embed(request: ServerEmbedRequest): Promise<Embeddings>;
  tokenize(request: { prompt?: string; messages?: ChatMessage[]; addSpecial?: boolean }): Promise<number[]>;
  detokenize(tokens: number[]): Promise<string>;
  adapters(): Promise<string[]>;
  stats(): Promise<EngineStats>;
}

function throughHandle(handle: DeploymentHandle<ModelServer>): ModelServer {
  return {
    generate: (request) => handle.generate.remote(request),
    embed: async (request) => await handle.embed.remote(request),
    tokenize: async (request) => await handle.tokenize.remote(request),
    detokenize: async (tokens) => await handle.detokenize.remote(tokens),
    adapters: async () => await handle.adapters.remote(),
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
      if (is('GET', '/v1/models')) return await this.#models();
      if (is('POST', '/v1/completions') && !path.endsWith('/chat/completions'))
        return await this.#generate(request, 'completion');
      if (is('POST', '/v1/chat/completions')) return await this.#generate(request, 'chat');
      if (is('POST', '/v1/embeddings')) return await this.#embed(request);
      if (is('POST', '/tokenize')) return await this.#tokenize(request);
      if (is('POST', '/detokenize')) return await this.#detokenize(request);
      if (is('GET', '/v1/rayline/stats')) return await this.#stats(request);
      throw new OpenAIError(404, `no route ${request.method} ${request.path}`, { code: 'not_found' });
    } catch (error) {
      const e = toOpenAIError(error);
      return response(e.body, { status: e.status });
    }
  }

  /** The models, and the LoRA adapters each can serve as `MODEL_ID:ADAPTER` (`parent` names the model). */
  async #models() {
    const entry = (id: string, parent?: string) => ({
      id,
      object: 'model',
      created: this.#created,
      owned_by: 'rayline',
      ...(parent ? { root: parent, parent } : {}),
    });
    // A model whose replicas cannot answer soon (starting, gone) is listed without its adapters.
    const servers = Object.entries(this.#servers);
    const adapters = await Promise.all(
      servers.map(([, server]) =>
        Promise.race([
          server.adapters().catch(() => []),
          new Promise<string[]>((resolve) => setTimeout(resolve, ADAPTERS_WAIT_MS, []).unref()),
        ]),
      ),
    );
    const data = servers.flatMap(([id], i) => [
      entry(id),
      ...adapters[i].map((a) => entry(`${id}:${a}`, id)),
    ]);
    return { object: 'list', data };
  }

  /** The server of a model, for endpoints that take no adapter. */
  #server(model: string): ModelServer {
    const { server, adapter } = this.#route(model);
    if (adapter !== undefined) {
      throw new OpenAIError(
        400,
        `model: '${model}' names a LoRA adapter; adapters serve completions and chat only`,
        {
          param: 'model',
          code: 'invalid_value',
        },
      );
    }
    return server;
  }

  /** The server of `MODEL_ID` or `MODEL_ID:ADAPTER` (Ray Serve LLM's naming of LoRA adapters). */
  #route(model: string): { server: ModelServer; adapter?: string } {
    if (Object.hasOwn(this.#servers, model)) return { server: this.#servers[model] };
    const colon = model.indexOf(':');
    const base = model.slice(0, colon);
    if (colon > 0 && Object.hasOwn(this.#servers, base)) {
      return { server: this.#servers[base], adapter: model.slice(colon + 1) };
    }
    throw new OpenAIError(404, `The model '${model}' does not exist`, {
      param: 'model',
      code: 'model_not_found',
    });
  }

  /** Engine counters of one model's replica (the generated-token count shows that a cancel stopped work). */
  async #stats(request: ServeRequest) {
    const model = request.query.get('model') ?? '';
    return await this.#server(model).stats();
  }

  /** vLLM's `/tokenize`: `{count, tokens}`. */
  async #tokenize(request: ServeRequest): Promise<unknown> {
    const parsed = tokenizeRequestSchema.safeParse(request.json<unknown>());
    if (!parsed.success) throw validationError(parsed.error);
    const req = parsed.data;
    const server = this.#server(req.model);
    const tokens =
      'messages' in req
        ? await server.tokenize({ messages: chatMessages(req.messages) })
        : await server.tokenize({ prompt: req.prompt, addSpecial: req.add_special_tokens ?? true });
    return { count: tokens.length, tokens };
  }

  /** vLLM's `/detokenize`: `{prompt}`. */
  async #detokenize(request: ServeRequest): Promise<unknown> {
    const parsed = detokenizeRequestSchema.safeParse(request.json<unknown>());
    if (!parsed.success) throw validationError(parsed.error);
    return { prompt: await this.#server(parsed.data.model).detokenize(parsed.data.tokens) };
  }

  async #embed(request: ServeRequest): Promise<unknown> {
    const parsed = embeddingRequestSchema.safeParse(request.json<unknown>());
    if (!parsed.success) throw validationError(parsed.error);
    const req = parsed.data;
    const server = this.#server(req.model);
    let result: Embeddings;
    try {
      const dimensions = req.dimensions != null ? { dimensions: req.dimensions } : {};
      const session = request.headers[SESSION_HEADER] || req.user;
      result = await server.embed({ input: req.input, ...dimensions, ...(session ? { session } : {}) });
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
    refuseUnsupported(body as Record<string, unknown>);
    const req = parsed.data;
    const { server, adapter } = this.#route(req.model);
    const maxTokens =
      ('max_completion_tokens' in req ? req.max_completion_tokens : undefined) ??
      req.max_tokens ??
      (kind === 'chat' ? CHAT_MAX_TOKENS : COMPLETION_MAX_TOKENS);
    const chat = 'messages' in req ? req : undefined;
    const completion = 'prompt' in req ? req : undefined;
    const logprobs = chat ? chatLogprobs(chat) : (completion?.logprobs ?? undefined);
    const n = req.n ?? 1;
    const bestOf = completion?.best_of ?? n;
    if (bestOf < n) throw badParam('best_of', `must be at least n (${n})`);
    if (bestOf > n && req.stream) throw badParam('best_of', 'cannot be used with stream');
    if (req.stream_options != null && !req.stream) throw badParam('stream_options', 'needs stream: true');
    const tools = chat ? toolsOf(chat) : undefined;
    const constraint = chat ? constraintOf(chat, tools) : undefined;
    const sampling: SamplingParams = {
      temperature: req.temperature ?? 1,
      topP: req.top_p ?? 1,
      maxTokens,
      stop: req.stop,
      seed: req.seed ?? undefined,
      frequencyPenalty: req.frequency_penalty ?? 0,
      presencePenalty: req.presence_penalty ?? 0,
      ...(constraint ? { constraint } : {}),
      // best_of ranks candidates by their tokens' logprobs.
      ...(logprobs !== undefined || bestOf > n ? { logprobs: logprobs ?? 0 } : {}),
    };
    // Read by the router of the model's deployment when it is called through a handle.
    // An adapter's requests go where it is loaded, before any session.
    const session =
      (adapter !== undefined ? req.model : undefined) ||
      request.headers[SESSION_HEADER] ||
      req.user ||
      req.prompt_cache_key ||
      undefined;
    const call: ServerGenerateRequest = {
      ...(chat
        ? { messages: chatMessages(chat.messages), ...(tools ? { tools } : {}) }
        : {
            prompt:
              typeof completion?.prompt === 'string' ? completion.prompt : (completion?.prompt[0] ?? ''),
          }),
      sampling,
      ...(session ? { session } : {}),
      ...(adapter !== undefined ? { adapter } : {}),
    };
    const runs = await startRuns(server, call, bestOf);
    const meta = {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      created: Math.floor(Date.now() / 1000),
      model: req.model,
    };
    const wants = { logprobs: logprobs !== undefined };
    if (req.stream) {
      // The proxy frames strings as SSE itself when the client asked for text/event-stream; the
      // openai npm client does not ask, so then each chunk arrives here already framed.
      const framed = !(request.headers.accept ?? '').includes('text/event-stream');
      const frame = (data: string) => (framed ? `data: ${data}\n\n` : data);
      const chunks = streamChunks(kind, meta, wants, runs, req.stream_options?.include_usage === true);
      return response(mapIterable(chunks, frame), {
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      });
    }
    return await collect(kind, meta, wants, runs, bestOf > n ? n : undefined);
  }
}

/**
 * `n` generations of one request, each on its own sequence. A seed gives choice i the seed plus i
 * (choice 0 is what n=1 answers); without one, choices get distinct random seeds. The first event of
 * each is awaited, so that a failure (context overflow, model not loaded) answers with its status
 * instead of a broken stream.
 */
async function startRuns(server: ModelServer, call: ServerGenerateRequest, n: number): Promise<Run[]> {
  const seed = call.sampling.seed ?? (n > 1 ? randomInt(2 ** 31) : undefined);
  const runs = Array.from({ length: n }, (_, i) => {
    const sampling = { ...call.sampling, seed: seed === undefined ? undefined : seed + i };
    const events = server.generate({ ...call, sampling })[Symbol.asyncIterator]();
    return { events, first: events.next() };
  });
  const firsts = await Promise.allSettled(runs.map((r) => r.first));
  const failed = firsts.find((f) => f.status === 'rejected');
  if (failed) {
    await Promise.allSettled(runs.map((r) => r.events.return?.()));
    throw failed.reason;
  }
  return runs.map((r, i) => ({
    events: r.events,
    first: (firsts[i] as PromiseFulfilledResult<IteratorResult<ServerEvent>>).value,
  }));
}

/** OpenAI's messages in the engine's terms. */
function chatMessages(messages: readonly ChatRequestMessage[]): ChatMessage[] {
  return messages.map((m): ChatMessage => {
    switch (m.role) {
      case 'tool':
        return { role: 'tool', content: m.content, toolCallId: m.tool_call_id };
      case 'assistant':
        return {
          role: 'assistant',
          content: m.content ?? '',
          ...(m.tool_calls?.length
            ? {
                toolCalls: m.tool_calls.map((c) => ({
                  id: c.id,
                  name: c.function.name,
                  arguments: c.function.arguments,
                })),
              }
            : {}),
        };
      default:
        return { role: m.role === 'developer' ? 'system' : m.role, content: m.content };
    }
  });
}

/** Chat's `logprobs` + `top_logprobs` as the number of alternatives, or undefined for none. */
function chatLogprobs(req: ChatRequest): number | undefined {
  if (req.logprobs) return req.top_logprobs ?? 0;
  if (req.top_logprobs != null) throw badParam('top_logprobs', 'needs logprobs: true');
  return undefined;
}

function toolsOf(req: ChatRequest): ToolsRequest | undefined {
  if (!req.tools) {
    if (req.tool_choice != null && req.tool_choice !== 'none') throw badParam('tool_choice', 'needs tools');
    if (req.parallel_tool_calls != null) throw badParam('parallel_tool_calls', 'needs tools');
    return undefined;
  }
  const definitions = req.tools.map((t) => ({
    name: t.function.name,
    ...(t.function.description !== undefined ? { description: t.function.description } : {}),
    ...(t.function.parameters !== undefined ? { parameters: t.function.parameters } : {}),
  }));
  const names = definitions.map((d) => d.name);
  const duplicate = names.findIndex((n, i) => names.indexOf(n) !== i);
  if (duplicate !== -1)
    throw badParam(`tools.${duplicate}.function.name`, `'${names[duplicate]}' is given twice`);
  const given = req.tool_choice ?? 'auto';
  let choice: ToolsRequest['choice'];
  if (typeof given === 'string') choice = given;
  else {
    if (!names.includes(given.function.name))
      throw badParam('tool_choice.function.name', `no tool is named '${given.function.name}'`);
    choice = { name: given.function.name };
  }
  return { definitions, choice, parallel: req.parallel_tool_calls ?? true };
}

/** `response_format` as an output constraint; JSON output and tool calls exclude each other. */
function constraintOf(req: ChatRequest, tools: ToolsRequest | undefined): OutputConstraint | undefined {
  const format = req.response_format;
  if (!format || format.type === 'text') return undefined;
  if (tools && tools.choice !== 'none') {
    throw badParam('response_format', `${format.type} with tools is supported only with tool_choice 'none'`);
  }
  if (format.type === 'json_object') return { type: 'json_object' };
  // No schema: any JSON object, as OpenAI treats it.
  const { schema, name } = format.json_schema;
  return schema ? { type: 'json_schema', schema, name } : { type: 'json_object' };
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
    case 'RL_NOT_FOUND': {
      // Engines and servers name the parameter at fault first (`response_format.json_schema.schema.pattern: ...`).
      const param = /^([A-Za-z_$][\w$]*(?:\.[\w$-]+)*): /.exec(message)?.[1] ?? null;
      return e.code === 'RL_NOT_FOUND'
        ? new OpenAIError(404, message, { code: param === 'model' ? 'model_not_found' : 'not_found', param })
        : new OpenAIError(400, message, { code: 'invalid_value', param });
    }
    case 'RL_BACKPRESSURE':
      return new OpenAIError(429, message, { type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    case 'RL_UNAVAILABLE':
    case 'RL_REPLICA_DIED':
      return new OpenAIError(503, message, { type: 'server_error', code: 'service_unavailable' });
  }
  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 500;
  return new OpenAIError(status, message);
}
