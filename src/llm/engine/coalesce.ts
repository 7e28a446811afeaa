/**
 * Decouples decoding from the reader: the engine's deltas are pulled eagerly into a buffer, and the
 * reader gets everything buffered since its last read as one delta. A slow reader (a client behind
 * process hops) then neither pauses decoding nor receives one message per token.
 *
 * With an interval (Ray Serve LLM's `stream_batching_interval_ms`), deltas after the first are held
 * until that long after the previous one, so a stream costs one message per interval instead of one
 * per token; the first delta and the end are never held, so time to first token is unchanged.
 */
import type { TextDelta, TokenLogprob, ToolCallDelta } from './types.ts';

export async function* coalesce(source: AsyncIterable<TextDelta>, intervalMs = 0): AsyncGenerator<TextDelta> {
  const iterator = source[Symbol.asyncIterator]();
  let text = '';
  let tokenCount = 0;
  let logprobs: TokenLogprob[] | undefined;
  let toolCalls: ToolCallDelta[] | undefined;
  let finished = false;
  let failure: { error: unknown } | undefined;
  /** Set while the reader waits: for data (`waitingForData`) or for the interval to pass. */
  let wake: (() => void) | undefined;
  let waitingForData = false;
  const pump = (async () => {
    try {
      while (true) {
        const next = await iterator.next();
        if (next.done) break;
        text += next.value.text;
        tokenCount += next.value.tokenCount;
        if (next.value.logprobs) logprobs = [...(logprobs ?? []), ...next.value.logprobs];
        if (next.value.toolCalls) toolCalls = [...(toolCalls ?? []), ...next.value.toolCalls];
        if (waitingForData) wake?.();
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      wake?.();
    }
  })();
  /** When the next delta may leave: at once for the first. */
  let due = 0;
  try {
    while (true) {
      const buffered = tokenCount > 0 || text !== '' || toolCalls !== undefined;
      const wait = buffered && !finished && !failure ? due - performance.now() : 0;
      if (buffered && wait <= 0) {
        const delta: TextDelta = { text, tokenCount };
        if (logprobs) delta.logprobs = logprobs;
        if (toolCalls) delta.toolCalls = toolCalls;
        text = '';
        tokenCount = 0;
        logprobs = undefined;
        toolCalls = undefined;
        // Counted from the send, not from the reader's return: a reader held up by flow control
        // gets what piled up meanwhile at once.
        due = performance.now() + intervalMs;
        yield delta;
        continue;
      }
      if (failure) throw failure.error;
      if (finished) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        waitingForData = !buffered;
        if (buffered) timer = setTimeout(resolve, wait);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  } finally {
    // The reader left early: stop the source too (it frees its sequence), then let the pump end.
    if (!finished) await iterator.return?.();
    await pump;
  }
}
