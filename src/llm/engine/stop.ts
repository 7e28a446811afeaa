/**
 * Stop strings over streamed text. Text that could be the start of a stop string is held back until
 * the next piece shows whether it is one, so a stop string never leaks to the client, even split
 * across tokens.
 */

export class StopMatcher {
  readonly #stops: string[];
  #held = '';

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** Adds generated text; returns what may be sent now and whether a stop string was reached. */
  push(text: string): { emit: string; stopped: boolean } {
    const buffer = this.#held + text;
    let first = -1;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
    if (first !== -1) {
      this.#held = '';
      return { emit: buffer.slice(0, first), stopped: true };
    }
    let keep = 0;
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, buffer.length); n > keep; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    this.#held = buffer.slice(buffer.length - keep);
    return { emit: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** At the end of generation: the held text was not a stop string after all. */
  flush(): string {
    const held = this.#held;
    this.#held = '';
    return held;
  }
}

/**
 * Turns tokens into text without splitting a multi-byte character: tokens whose text ends in an
 * incomplete UTF-8 sequence (decoded as U+FFFD) wait for the next ones, up to a few.
 */
export class IncrementalDetokenizer {
  readonly #detokenize: (tokens: number[]) => string;
  #pending: number[] = [];

  constructor(detokenize: (tokens: number[]) => string) {
    this.#detokenize = detokenize;
  }

  push(token: number): { text: string; tokenCount: number } {
    this.#pending.push(token);
    const text = this.#detokenize(this.#pending);
    // A UTF-8 character is at most 4 bytes, so 4 pending tokens that still end badly are emitted as is.
    if (text.endsWith('\uFFFD') && this.#pending.length < 4) return { text: '', tokenCount: 0 };
    const tokenCount = this.#pending.length;
    this.#pending = [];
    return { text, tokenCount };
  }

  flush(): { text: string; tokenCount: number } {
    if (this.#pending.length === 0) return { text: '', tokenCount: 0 };
    const out = { text: this.#detokenize(this.#pending), tokenCount: this.#pending.length };
    this.#pending = [];
    return out;
  }
}
