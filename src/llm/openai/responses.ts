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

/** One choice's generation: its first event (awaited before answering) and the rest. */
export interface Run {
  first: IteratorResult<ServerEvent>;
  events: AsyncIterator<ServerEvent>;
}

/** Usage of several choices: the prompt once (as OpenAI counts it), the completions summed. */
function totalUsage(done: Done[]): Usage {
  const prompt_tokens = done[0]?.usage.prompt_tokens ?? 0;
  const completion_tokens = done.reduce((n, d) => n + d.usage.completion_tokens, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

async function collectChoice(kind: Kind, wants: Wants, index: number, run: Run) {
  let text = '';
  let done: Done | undefined;
  const logprobs: TokenLogprob[] = [];
  const calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> = [];
  for (let next = run.first; !next.done; next = await run.events.next()) {
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
  if (kind === 'chat') {
    const toolCalls = calls.filter(Boolean);
    const choice = {
      index,
      message: {
        role: 'assistant',
        content: toolCalls.length > 0 && !text ? null : text,
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
      },
      logprobs: wants.logprobs ? chatLogprobs(logprobs) : null,
      finish_reason: done.finish_reason,
    };
    return { choice, done, logprobs };
  }
  const choice = {
    index,
    text,
    logprobs: wants.logprobs ? completionLogprobs(logprobs, 0) : null,
    finish_reason: done.finish_reason,
  };
  return { choice, done, logprobs };
}

/**
 * The reply of all runs; with `bestOf`, only the `bestOf` most likely runs (highest sum of their
 * tokens' logprobs, which the runs must carry), in that order. Usage counts every run, as OpenAI does.
 */
export async function collect(
  kind: Kind,
  meta: Meta,
  wants: Wants,
  runs: Run[],
  bestOf?: number,
): Promise<unknown> {
  const results = await Promise.all(runs.map((run, index) => collectChoice(kind, wants, index, run)));
  const score = (r: (typeof results)[number]) => r.logprobs.reduce((sum, l) => sum + l.logprob, 0);
  const chosen =
    bestOf === undefined ? results : [...results].sort((a, b) => score(b) - score(a)).slice(0, bestOf);
  return {
    ...meta,
    object: kind === 'chat' ? 'chat.completion' : 'text_completion',
    choices: chosen.map((r, index) => ({ ...r.choice, index })),
    usage: totalUsage(results.map((r) => r.done)),
  };
}

/** The runs' events as they come, each with its choice index. */
async function* merged(runs: Run[]): AsyncGenerator<{ index: number; event: ServerEvent }> {
  type Pending = Promise<{ index: number; next: IteratorResult<ServerEvent> }>;
  const pending = new Map<number, Pending>();
  for (const [index, run] of runs.entries()) pending.set(index, Promise.resolve({ index, next: run.first }));
  // A run's next event is asked for only once the reader wants more: a reader that leaves finds no
  // request in flight on the run it last read (with one choice, none at all), so it stops at once.
  let resume: number | undefined;
  while (true) {
    if (resume !== undefined) {
      const index = resume;
      pending.set(
        index,
        runs[index].events.next().then((next) => ({ index, next })),
      );
      resume = undefined;
    }
    if (pending.size === 0) return;
    const { index, next } = await Promise.race(pending.values());
    pending.delete(index);
    if (next.done) continue;
    resume = index;
    yield { index, event: next.value };
  }
}

/** OpenAI's stream chunks as JSON strings, ending with `[DONE]`. */
export async function* streamChunks(
  kind: Kind,
  meta: Meta,
  wants: Wants,
  runs: Run[],
  includeUsage: boolean,
): AsyncGenerator<string> {
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const chunk = (index: number, choice: Record<string, unknown>, finish: string | null) =>
    JSON.stringify({
      ...meta,
      object,
      choices: [{ index, logprobs: null, ...choice, finish_reason: finish }],
    });
  const offsets = runs.map(() => 0);
  const done: Done[] = [];
  try {
    if (kind === 'chat') {
      for (const index of runs.keys())
        yield chunk(index, { delta: { role: 'assistant', content: '' } }, null);
    }
    for await (const { index, event } of merged(runs)) {
      if (event.type === 'delta') {
        const logprobs =
          wants.logprobs && event.logprobs?.length
            ? {
                logprobs:
                  kind === 'chat'
                    ? chatLogprobs(event.logprobs)
                    : completionLogprobs(event.logprobs, offsets[index]),
              }
            : {};
        offsets[index] += event.text.length;
        if (event.tool_calls?.length) {
          yield chunk(index, { delta: { tool_calls: event.tool_calls.map(wireToolCall) } }, null);
        }
        if (event.text)
          yield chunk(
            index,
            kind === 'chat'
              ? { delta: { content: event.text }, ...logprobs }
              : { text: event.text, ...logprobs },
            null,
          );
        continue;
      }
      done.push(event);
      yield chunk(index, kind === 'chat' ? { delta: {} } : { text: '' }, event.finish_reason);
    }
    if (includeUsage) yield JSON.stringify({ ...meta, object, choices: [], usage: totalUsage(done) });
    yield '[DONE]';
  } finally {
    // The client went away (or an error): stop the model's streams too.
    await Promise.all(runs.map((run) => run.events.return?.()));
  }
}
