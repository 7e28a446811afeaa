/**
 * OpenAI's response bodies and stream chunks, built from a model server's events: text, tool calls
 * (whole in a reply, as deltas in a stream, as OpenAI sends them) and logprobs (chat's
 * `{content: [...]}` and completions' `{tokens, token_logprobs, top_logprobs, text_offset}`).
 */
import type { TokenLogprob, ToolCallDelta, TopLogprob } from '../engine/types.ts';
import type { ServerEvent } from '../server.ts';
import { OpenAIError } from './schemas.ts';

export type Kind = 'completion' | 'chat';
type Done = Extract<ServerEvent, { type: 'done' }>;
type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };

export interface Meta {
  id: string;
  created: number;
  model: string;
}

/** What the client asked to get back besides text. */
export interface Wants {
  logprobs: boolean;
}

function usageOf(done: Done): Usage {
  const { prompt_tokens, completion_tokens } = done.usage;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

const top = (l: TopLogprob) => ({ token: l.token, logprob: l.logprob, bytes: l.bytes });

function chatLogprobs(list: TokenLogprob[]) {
  return { content: list.map((l) => ({ ...top(l), top_logprobs: l.top.map(top) })), refusal: null };
}

/** Completions' logprobs; `offset` is where this part's text starts in the whole completion. */
function completionLogprobs(list: TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const l of list) {
    text_offset.push(at);
    at += l.token.length;
  }
  return {
    tokens: list.map((l) => l.token),
    token_logprobs: list.map((l) => l.logprob),
    top_logprobs: list.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

const wireToolCall = (c: ToolCallDelta) => ({
  index: c.index,
  ...(c.id ? { id: c.id, type: 'function' } : {}),
  function: { ...(c.name ? { name: c.name } : {}), arguments: c.arguments },
});

export async function collect(
  kind: Kind,
  meta: Meta,
  wants: Wants,
  first: IteratorResult<ServerEvent>,
  events: AsyncIterator<ServerEvent>,
): Promise<unknown> {
  let text = '';
  let done: Done | undefined;
  const logprobs: TokenLogprob[] = [];
  const calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> = [];
  for (let next = first; !next.done; next = await events.next()) {
    const event = next.value;
    if (event.type === 'done') {
      done = event;
      continue;
    }
    text += event.text;
    if (event.logprobs) logprobs.push(...event.logprobs);
    for (const c of event.tool_calls ?? []) {
      calls[c.index] ??= { id: c.id ?? '', type: 'function', function: { name: '', arguments: '' } };
      const call = calls[c.index];
      if (c.id) call.id = c.id;
      if (c.name) call.function.name += c.name;
      call.function.arguments += c.arguments;
    }
  }
  if (!done) throw new OpenAIError(500, 'generation ended without a result');
  const usage = usageOf(done);
  if (kind === 'chat') {
    const toolCalls = calls.filter(Boolean);
    return {
      ...meta,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: toolCalls.length > 0 && !text ? null : text,
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          },
          logprobs: wants.logprobs ? chatLogprobs(logprobs) : null,
          finish_reason: done.finish_reason,
        },
      ],
      usage,
    };
  }
  return {
    ...meta,
    object: 'text_completion',
    choices: [
      {
        index: 0,
        text,
        logprobs: wants.logprobs ? completionLogprobs(logprobs, 0) : null,
        finish_reason: done.finish_reason,
      },
    ],
    usage,
  };
}

/** OpenAI's stream chunks as JSON strings, ending with `[DONE]`. */
export async function* streamChunks(
  kind: Kind,
  meta: Meta,
  wants: Wants,
  first: IteratorResult<ServerEvent>,
  events: AsyncIterator<ServerEvent>,
  includeUsage: boolean,
): AsyncGenerator<string> {
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const chunk = (choice: Record<string, unknown>, finish: string | null) =>
    JSON.stringify({
      ...meta,
      object,
      choices: [{ index: 0, logprobs: null, ...choice, finish_reason: finish }],
    });
  let offset = 0;
  try {
    if (kind === 'chat') yield chunk({ delta: { role: 'assistant', content: '' } }, null);
    for (let next = first; !next.done; next = await events.next()) {
      const event = next.value;
      if (event.type === 'delta') {
        const logprobs =
          wants.logprobs && event.logprobs?.length
            ? {
                logprobs:
                  kind === 'chat' ? chatLogprobs(event.logprobs) : completionLogprobs(event.logprobs, offset),
              }
            : {};
        offset += event.text.length;
        if (event.tool_calls?.length) {
          yield chunk({ delta: { tool_calls: event.tool_calls.map(wireToolCall) } }, null);
        }
        if (event.text)
          yield chunk(
            kind === 'chat'
              ? { delta: { content: event.text }, ...logprobs }
              : { text: event.text, ...logprobs },
            null,
          );
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
