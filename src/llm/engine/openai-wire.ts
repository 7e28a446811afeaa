/**
 * The openai-upstream engine's side of OpenAI's wire format beyond text: messages with tool calls,
 * the structured-output, logprobs and tool parameters passed on, and the logprobs of stream chunks
 * read back.
 */
import type { ChatMessage, SamplingParams, TokenLogprob, ToolsRequest } from './types.ts';

/** A chat is sent as messages to `/v1/chat/completions`; a prompt to `/v1/completions`. */
export type UpstreamInput =
  | { prompt: string | number[] }
  | { messages: readonly ChatMessage[]; tools?: ToolsRequest };

interface UpstreamLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: UpstreamLogprob[];
}

export interface StreamChunk {
  choices?: Array<{
    text?: string;
    delta?: {
      content?: string | null;
      tool_calls?: Array<{ index: number; id?: string; function?: { name?: string; arguments?: string } }>;
    };
    finish_reason?: string | null;
    logprobs?: {
      // chat
      content?: UpstreamLogprob[] | null;
      // completions
      tokens?: string[];
      token_logprobs?: number[];
      top_logprobs?: Array<Record<string, number>> | null;
    } | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}

const bytesOf = (token: string) => [...Buffer.from(token, 'utf8')];

/** An upstream chunk's logprobs (chat's or completions' shape) in the engine's terms. */
export function logprobsOf(
  given: NonNullable<StreamChunk['choices']>[number]['logprobs'],
): TokenLogprob[] | undefined {
  if (!given) return undefined;
  const one = (l: UpstreamLogprob) => ({
    token: l.token,
    logprob: l.logprob,
    bytes: l.bytes ?? bytesOf(l.token),
  });
  if (given.content) return given.content.map((l) => ({ ...one(l), top: (l.top_logprobs ?? []).map(one) }));
  if (!given.tokens) return undefined;
  return given.tokens.map((token, i) => ({
    token,
    logprob: given.token_logprobs?.[i] ?? 0,
    bytes: bytesOf(token),
    top: Object.entries(given.top_logprobs?.[i] ?? {}).map(([t, logprob]) => ({
      token: t,
      logprob,
      bytes: bytesOf(t),
    })),
  }));
}

/** A message as OpenAI's API spells it. */
export function openAIMessage(m: ChatMessage): Record<string, unknown> {
  if (m.role === 'tool') return { role: 'tool', content: m.content, tool_call_id: m.toolCallId };
  if (m.role === 'assistant' && m.toolCalls?.length) {
    return {
      role: 'assistant',
      content: m.content || null,
      tool_calls: m.toolCalls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
      })),
    };
  }
  return { role: m.role, content: m.content };
}

/** The request's structured-output, logprobs and tool parameters, passed on as OpenAI names them. */
export function upstreamParams(input: UpstreamInput, sampling: SamplingParams): Record<string, unknown> {
  const chat = 'messages' in input;
  const out: Record<string, unknown> = {};
  const c = sampling.constraint;
  if (c?.type === 'json_object') out.response_format = { type: 'json_object' };
  if (c?.type === 'json_schema') {
    out.response_format = {
      type: 'json_schema',
      json_schema: { name: c.name ?? 'response', schema: c.schema, strict: true },
    };
  }
  if (sampling.logprobs !== undefined) {
    if (chat) Object.assign(out, { logprobs: true, top_logprobs: sampling.logprobs });
    else out.logprobs = sampling.logprobs;
  }
  const tools = chat ? input.tools : undefined;
  if (tools) {
    out.tools = tools.definitions.map((d) => ({
      type: 'function',
      function: {
        name: d.name,
        ...(d.description ? { description: d.description } : {}),
        ...(d.parameters ? { parameters: d.parameters } : {}),
      },
    }));
    out.tool_choice =
      typeof tools.choice === 'object'
        ? { type: 'function', function: { name: tools.choice.name } }
        : tools.choice;
    out.parallel_tool_calls = tools.parallel;
  }
  return out;
}
