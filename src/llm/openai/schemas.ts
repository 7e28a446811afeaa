/**
 * OpenAI's request bodies for completions, chat completions and embeddings, validated with zod under OpenAI's
 * field names. Fields OpenAI defines that Rayline ignores (user, logprobs off, ...) pass through.
 */
import { z } from 'zod';

const stop = z
  .union([z.string(), z.array(z.string()).max(4)])
  .nullish()
  .transform((s) => (s == null ? [] : typeof s === 'string' ? [s] : s));

// OpenAI answers 400 for any n other than 1 that a server does not support; only 1 is supported here.
const n = z
  .number()
  .int()
  .nullish()
  .refine((v) => v == null || v === 1, { message: 'only n=1 is supported' });

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
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n,
};

export const completionRequestSchema = z.object({
  ...common,
  prompt: z.union([
    z.string(),
    z.array(z.string()).length(1, { message: 'only one prompt per request is supported' }),
  ]),
});

const textContent = z.union([
  z.string(),
  z
    .array(z.object({ type: z.literal('text'), text: z.string() }))
    .transform((parts) => parts.map((p) => p.text).join('')),
]);

export const chatRequestSchema = z.object({
  ...common,
  max_completion_tokens: z.number().int().min(0).nullish(),
  messages: z
    .array(
      z.object({
        // 'developer' is OpenAI's newer name for the system role.
        role: z.enum(['system', 'developer', 'user', 'assistant']),
        content: textContent,
      }),
    )
    .min(1),
});

const embeddingInput = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048)], {
  error:
    'input must be a non-empty string or an array of 1 to 2048 non-empty strings (token ids are not supported)',
});

export const embeddingRequestSchema = z.object({
  model: common.model,
  input: embeddingInput.transform((i) => (typeof i === 'string' ? [i] : i)),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().positive().nullish(),
});

export type CompletionRequest = z.output<typeof completionRequestSchema>;
export type ChatRequest = z.output<typeof chatRequestSchema>;
export type EmbeddingRequest = z.output<typeof embeddingRequestSchema>;

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

/** The first zod issue as OpenAI's 400, naming the parameter as OpenAI does (`messages.0.role`). */
export function validationError(error: z.ZodError): OpenAIError {
  const issue = error.issues[0];
  const param = issue ? issue.path.map(String).join('.') : null;
  const message = issue ? `${param ? `${param}: ` : ''}${issue.message}` : 'invalid request';
  return new OpenAIError(400, message, { param: param || null, code: 'invalid_value' });
}
