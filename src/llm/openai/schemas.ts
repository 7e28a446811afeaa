/**
 * OpenAI's request bodies for completions, chat completions, embeddings and vLLM's tokenize and
 * detokenize, validated with zod under OpenAI's field names. Every parameter Rayline accepts is
 * honoured; any other (OpenAI's hosted-only features, or ones not implemented here) answers 400
 * naming it, so a client never gets a response that silently ignored what it asked for.
 */
import { z } from 'zod';

const stop = z
  .union([z.string(), z.array(z.string()).max(4)])
  .nullish()
  .transform((s) => (s == null ? [] : typeof s === 'string' ? [s] : s));

/**
 * Parameters OpenAI defines that Rayline does not honour, each with why: a request that sets one to
 * anything but its neutral value answers 400 naming it (see `refuseUnsupported`).
 */
const UNSUPPORTED: Record<string, string> = {
  echo: 'echo is not supported',
  suffix: 'suffix (insertion) is not supported',
  logit_bias: 'logit_bias is not supported',
  functions: 'the deprecated functions parameter is not supported; use tools',
  function_call: 'the deprecated function_call parameter is not supported; use tool_choice',
  audio: 'audio output is not supported',
  modalities: 'only text output is supported',
  prediction: 'predicted outputs are not supported',
  reasoning_effort: 'reasoning_effort is not supported',
  verbosity: 'verbosity is not supported',
  web_search_options: 'web search is not supported',
  store: 'storing completions is not supported',
  metadata: 'metadata is only used with store, which is not supported',
  service_tier: 'service tiers are not supported',
  safety_identifier: 'safety_identifier is not supported',
};

/** The value of each unsupported parameter that asks for nothing (what OpenAI does by default). */
const NEUTRAL: Record<string, (v: unknown) => boolean> = {
  echo: (v) => v === false,
  store: (v) => v === false,
  service_tier: (v) => v === 'auto' || v === 'default',
  modalities: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text',
};

/** A JSON Schema as given; what the engine can enforce is checked later (json-schema.ts). */
const jsonSchema = z.record(z.string(), z.unknown());

export const responseFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('text') }),
    z.strictObject({ type: z.literal('json_object') }),
    z.strictObject({
      type: z.literal('json_schema'),
      json_schema: z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'name: 1 to 64 of a-z, A-Z, 0-9, _ and -'),
        description: z.string().optional(),
        schema: jsonSchema.optional(),
        // Generation always follows the schema (a grammar); strict only says so.
        strict: z.boolean().nullish(),
      }),
    }),
  ],
  { error: "must be 'text', 'json_object' or 'json_schema'" },
);

const functionName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a function name is 1 to 64 of a-z, A-Z, 0-9, _ and -');

const toolSchema = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({
    name: functionName,
    description: z.string().optional(),
    parameters: jsonSchema.optional(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoiceSchema = z.union(
  [
    z.enum(['none', 'auto', 'required']),
    z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: functionName }) }),
  ],
  { error: "must be 'none', 'auto', 'required' or {type: 'function', function: {name}}" },
);

const common = {
  model: z.string({ error: 'model is required' }).min(1),
  max_tokens: z.number().int().min(0).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  stop,
  seed: z.number().int().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
  /** Choices to generate, each its own sequence (OpenAI's maximum, 128). */
  n: z.number().int().min(1).max(128).nullish(),
  /** The session key for replica affinity when no `x-session-id` header is sent. */
  user: z.string().nullish(),
  /** OpenAI's prompt-cache routing key: here, too, a session key for replica affinity. */
  prompt_cache_key: z.string().nullish(),
  ...Object.fromEntries(Object.keys(UNSUPPORTED).map((k) => [k, z.unknown().optional()])),
};

export const completionRequestSchema = z.strictObject({
  ...common,
  prompt: z.union([
    z.string(),
    z.array(z.string()).length(1, { message: 'only one prompt per request is supported' }),
  ]),
  /** The number of most likely tokens to return per position, besides the chosen one (0 to 5). */
  logprobs: z.number().int().min(0).max(5).nullish(),
  /** Candidates generated, of which the `n` most likely (cumulative logprob) are answered. */
  best_of: z.number().int().min(1).max(20).nullish(),
});

const textParts = z
  .array(
    z.strictObject({
      type: z.literal('text', { error: 'only text content parts are supported' }),
      text: z.string(),
    }),
  )
  .transform((parts) => parts.map((p) => p.text).join(''));
const textContent = z.union([z.string(), textParts], {
  error: 'must be a string or an array of text parts (only text content is supported)',
});

const toolCallSchema = z.strictObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1), arguments: z.string() }),
});

const message = z.discriminatedUnion(
  'role',
  [
    // 'developer' is OpenAI's newer name for the system role.
    z.strictObject({ role: z.enum(['system', 'developer']), content: textContent }),
    z.strictObject({ role: z.literal('user'), content: textContent }),
    z.strictObject({
      role: z.literal('assistant'),
      content: textContent.nullish(),
      tool_calls: z.array(toolCallSchema).nullish(),
    }),
    z.strictObject({ role: z.literal('tool'), content: textContent, tool_call_id: z.string().min(1) }),
  ],
  { error: "role must be 'system', 'developer', 'user', 'assistant' or 'tool'" },
);

export const chatRequestSchema = z.strictObject({
  ...common,
  max_completion_tokens: z.number().int().min(0).nullish(),
  messages: z.array(message).min(1),
  response_format: responseFormatSchema.nullish(),
  tools: z.array(toolSchema).min(1).max(128).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});

const embeddingInput = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048)], {
  error:
    'input must be a non-empty string or an array of 1 to 2048 non-empty strings (token ids are not supported)',
});

export const embeddingRequestSchema = z.strictObject({
  model: common.model,
  input: embeddingInput.transform((i) => (typeof i === 'string' ? [i] : i)),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().positive().nullish(),
  user: z.string().nullish(),
});

/** vLLM's `/tokenize`: a prompt, or chat messages formatted with the model's chat template. */
export const tokenizeRequestSchema = z.union([
  z.strictObject({
    model: common.model,
    prompt: z.string(),
    add_special_tokens: z.boolean().nullish(),
  }),
  z.strictObject({
    model: common.model,
    messages: z.array(message).min(1),
    add_generation_prompt: z.boolean().nullish(),
  }),
]);

export const detokenizeRequestSchema = z.strictObject({
  model: common.model,
  tokens: z.array(z.number().int().min(0)),
});

export type CompletionRequest = z.output<typeof completionRequestSchema>;
export type ChatRequest = z.output<typeof chatRequestSchema>;
export type ChatRequestMessage = ChatRequest['messages'][number];
export type EmbeddingRequest = z.output<typeof embeddingRequestSchema>;
export type TokenizeRequest = z.output<typeof tokenizeRequestSchema>;
export type DetokenizeRequest = z.output<typeof detokenizeRequestSchema>;

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class OpenAIError extends Error {
  readonly status: number;
  readonly body: OpenAIErrorBody;

  constructor(
    status: number,
    message: string,
    options: { type?: string; param?: string | null; code?: string | null } = {},
  ) {
    super(message);
    this.status = status;
    this.body = {
      error: {
        message,
        type: options.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
        param: options.param ?? null,
        code: options.code ?? null,
      },
    };
  }
}

/** 400 for the first parameter that Rayline does not honour and that asks for something. */
export function refuseUnsupported(body: Record<string, unknown>): void {
  for (const [param, why] of Object.entries(UNSUPPORTED)) {
    const value = body[param];
    if (value == null || NEUTRAL[param]?.(value)) continue;
    throw new OpenAIError(400, `${param}: ${why}`, { param, code: 'unsupported_parameter' });
  }
}

/** A 400 naming the parameter, as OpenAI names them (`messages.0.role`, `response_format.json_schema.schema.pattern`). */
export function badParam(param: string, message: string): OpenAIError {
  return new OpenAIError(400, `${param}: ${message}`, { param, code: 'invalid_value' });
}

/** The first zod issue as OpenAI's 400, naming the parameter as OpenAI does (`messages.0.role`). */
export function validationError(error: z.ZodError): OpenAIError {
  const issue = error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const param = [...issue.path.map(String), issue.keys[0]].join('.');
    return new OpenAIError(400, `${param}: unsupported parameter`, { param, code: 'unsupported_parameter' });
  }
  const param = issue ? issue.path.map(String).join('.') : null;
  const message = issue ? `${param ? `${param}: ` : ''}${issue.message}` : 'invalid request';
  return new OpenAIError(400, message, { param: param || null, code: 'invalid_value' });
}
