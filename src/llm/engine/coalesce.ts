/**
 * Decouples decoding from the reader: the engine's deltas are pulled eagerly into a buffer, and the
 * reader gets everything buffered since its last read as one delta. A slow reader (a client behind
 * two process hops) then neither pauses decoding nor receives one message per token; a fast reader
 * still gets each token as soon as it is decoded, so time to first token is unchanged.
 */
import type { TextDelta } from './types.ts';

export async function* coalesce(source: AsyncIterable<TextDelta>): AsyncGenerator<TextDelta> {
  const iterator = source[Symbol.asyncIterator]();
  let text = '';
  let tokenCount = 0;
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const pump = (async () => {
    try {
      while (true) {
        const next = await iterator.next();
        if (next.done) break;
        text += next.value.text;
        tokenCount += next.value.tokenCount;
        wake?.();
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      wake?.();
    }
  })();
  try {
    while (true) {
      if (tokenCount > 0 || text) {
        const delta = { text, tokenCount };
        text = '';
        tokenCount = 0;
        yield delta;
        continue;
      }
      if (failure) throw failure.error;
      if (finished) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    // The reader left early: stop the source too (it frees its sequence), then let the pump end.
    if (!finished) await iterator.return?.();
    await pump;
  }
}
