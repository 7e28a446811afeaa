/**
 * Prefix cache affinity (Ray Serve LLM's `PrefixCacheAffinityRouter`): while the candidate replicas'
 * queues are balanced, a prompt goes to the replica whose recent prompts share the longest prefix
 * with it, so the engine there can reuse the KV cache of that prefix. The pure policy: the router
 * asks it to choose and tells it what it dispatched where.
 *
 * Prompts are matched in blocks of BLOCK_CHARS characters. A block's key hashes the whole prefix up
 * to its end (chained), so a replica holding the key of block i saw those exact i + 1 blocks. Each
 * replica keeps the keys of its recent prompts in an LRU bounded by `maxBlocksPerReplica`; a prompt
 * touches its deepest block first, so a prefix is never evicted before its extensions and the keys
 * a replica holds are prefix-closed.
 */

/** Characters per matched block: prefixes match in whole blocks. */
export const BLOCK_CHARS = 16;
/** Blocks remembered per replica (8192 blocks: the last 128K characters of prompts, about 1 MB). */
export const DEFAULT_MAX_BLOCKS_PER_REPLICA = 8192;
/** Ray's defaults for `PrefixCacheAffinityRouter`. */
export const DEFAULT_IMBALANCED_THRESHOLD = 10;
export const DEFAULT_MATCH_RATE_THRESHOLD = 0.1;

export interface PrefixAffinityOptions {
  /** Queues count as balanced while max - min of the candidates' queue lengths is at most this. */
  imbalancedThreshold?: number;
  /** The fraction of the prompt that must match for affinity to decide (0 to 1). */
  matchRateThreshold?: number;
  maxBlocksPerReplica?: number;
}

/** What the policy needs to know of a replica. */
export interface AffinityCandidate {
  readonly replicaId: string;
  /** Estimated requests running or queued there. */
  readonly queueLength: number;
}

/** A prompt as the policy sees it: its block keys (first to last) and its length in characters. */
export interface PromptBlocks {
  readonly keys: readonly number[];
  readonly chars: number;
}

export class PrefixAffinity {
  imbalancedThreshold: number;
  matchRateThreshold: number;
  readonly maxBlocksPerReplica: number;
  /** Per replica: block keys in LRU order (oldest first; Map keeps insertion order). */
  readonly #replicas = new Map<string, Map<number, true>>();

  constructor(options: PrefixAffinityOptions = {}) {
    this.imbalancedThreshold = options.imbalancedThreshold ?? DEFAULT_IMBALANCED_THRESHOLD;
    this.matchRateThreshold = options.matchRateThreshold ?? DEFAULT_MATCH_RATE_THRESHOLD;
    this.maxBlocksPerReplica = options.maxBlocksPerReplica ?? DEFAULT_MAX_BLOCKS_PER_REPLICA;
  }

  /** The chained keys of a prompt's whole blocks (a trailing partial block is not matched). */
  blocks(prompt: string): PromptBlocks {
    const count = Math.min(Math.floor(prompt.length / BLOCK_CHARS), this.maxBlocksPerReplica);
    const keys = new Array<number>(count);
    // Two 32-bit FNV-style hashes carried across blocks, combined into one 53-bit key.
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    let i = 0;
    for (let b = 0; b < count; b++) {
      for (const end = i + BLOCK_CHARS; i < end; i++) {
        const c = prompt.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 0x01000193);
        h2 = Math.imul(h2 ^ c, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
      keys[b] = (h1 >>> 0) * 0x200000 + (h2 >>> 11);
    }
    return { keys, chars: prompt.length };
  }

  /**
   * The replica for this prompt, or undefined when affinity does not decide (the caller then uses
   * power of two choices): queues imbalanced, or nothing recorded on any candidate. When queues are
   * balanced, the candidate matching the longest prefix wins if the match covers at least
   * `matchRateThreshold` of the prompt; otherwise the candidate holding the fewest blocks (the most
   * room for a new prefix). Ties go to the shorter queue, then to the earlier candidate.
   */
  choose<C extends AffinityCandidate>(prompt: PromptBlocks, candidates: readonly C[]): C | undefined {
    if (candidates.length === 0) return undefined;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const c of candidates) {
      if (c.queueLength < min) min = c.queueLength;
      if (c.queueLength > max) max = c.queueLength;
    }
    if (max - min > this.imbalancedThreshold) return undefined;

    const held = candidates.map((c) => this.#replicas.get(c.replicaId));
    let recorded = false;
    for (const h of held) if (h && h.size > 0) recorded = true;
    if (!recorded) return undefined;

    // Longest match: keys are prefix-closed per replica, so stop at the first block nobody holds.
    const matched = new Array<number>(candidates.length).fill(0);
    let longest = 0;
    const { keys } = prompt;
    for (let b = 0; b < keys.length; b++) {
      let any = false;
      for (let r = 0; r < held.length; r++) {
        if (matched[r] === b && held[r]?.has(keys[b])) {
          matched[r] = b + 1;
          any = true;
        }
      }
      if (!any) break;
      longest = b + 1;
    }

    let best: C | undefined;
    let bestScore = 0;
    const matchRate = prompt.chars === 0 ? 0 : (longest * BLOCK_CHARS) / prompt.chars;
    const byMatch = longest > 0 && matchRate >= this.matchRateThreshold;
    for (let r = 0; r < candidates.length; r++) {
      const c = candidates[r];
      // Higher score wins: the blocks matched, or fewer blocks held.
      const score = byMatch ? matched[r] : -(held[r]?.size ?? 0);
      if (byMatch && score < longest) continue;
      if (!best || score > bestScore || (score === bestScore && c.queueLength < best.queueLength)) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  }

  /** Remembers that this prompt went to this replica. */
  record(replicaId: string, prompt: PromptBlocks): void {
    const { keys } = prompt;
    if (keys.length === 0) return;
    let held = this.#replicas.get(replicaId);
    if (!held) {
      held = new Map();
      this.#replicas.set(replicaId, held);
    }
    // Deepest first: the shallow blocks end up most recent, so they are evicted last.
    for (let b = keys.length - 1; b >= 0; b--) {
      held.delete(keys[b]);
      held.set(keys[b], true);
    }
    if (held.size > this.maxBlocksPerReplica) {
      let excess = held.size - this.maxBlocksPerReplica;
      for (const key of held.keys()) {
        held.delete(key);
        if (--excess === 0) break;
      }
    }
  }

  /** Forgets every replica not in `replicaIds` (they left the routing table). */
  retain(replicaIds: ReadonlySet<string>): void {
    for (const id of this.#replicas.keys()) if (!replicaIds.has(id)) this.#replicas.delete(id);
  }

  /** Blocks remembered for a replica. */
  heldBlocks(replicaId: string): number {
    return this.#replicas.get(replicaId)?.size ?? 0;
  }

  /** Replicas with anything remembered. */
  get replicaCount(): number {
    return this.#replicas.size;
  }
}

/**
 * The prompt text of a request to an LLM-like deployment, as Ray Serve LLM's router reads it: a
 * `prompt` string (or the strings of a `prompt` array, concatenated), or the `content` of each of
 * `messages` concatenated (text parts of structured content included). Undefined when there is none.
 */
export function promptOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as { prompt?: unknown; messages?: unknown };
  if (typeof v.prompt === 'string') return v.prompt;
  if (Array.isArray(v.prompt)) return textOf(v.prompt);
  if (Array.isArray(v.messages)) {
    let text = '';
    for (const m of v.messages)
      if (m !== null && typeof m === 'object') text += textOf((m as { content?: unknown }).content);
    return text;
  }
  return undefined;
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    let text = '';
    for (const item of value) text += textOf(item);
    return text;
  }
  if (value !== null && typeof value === 'object') {
    const part = value as { text?: unknown; content?: unknown };
    if (typeof part.text === 'string') return part.text;
    if (part.content !== undefined) return textOf(part.content);
  }
  return '';
}

/**
 * The prompt of a handle call: its first string argument, or the prompt of its first object
 * argument (see {@link promptOf}).
 */
export function promptOfArgs(args: readonly unknown[]): string | undefined {
  for (const arg of args) {
    if (typeof arg === 'string') return arg;
    if (arg !== null && typeof arg === 'object') return promptOf(arg);
  }
  return undefined;
}

/**
 * Bodies the proxy parses for a prompt at most: a larger one (a long chat history, a batch of
 * embedding inputs) is routed without one rather than hold up every request behind it.
 */
export const PROMPT_BODY_LIMIT = 1024 * 1024;

/**
 * The prompt of an HTTP request body: JSON with `prompt` or `messages`. Undefined when not JSON,
 * when neither key appears (an embeddings request), or past {@link PROMPT_BODY_LIMIT}.
 */
export function promptOfBody(body: Uint8Array): string | undefined {
  if (body.length === 0 || body.length > PROMPT_BODY_LIMIT) return undefined;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.length);
  if (bytes.indexOf('"prompt"') === -1 && bytes.indexOf('"messages"') === -1) return undefined;
  // Only a JSON object can carry a prompt: skip anything else without parsing it.
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09))
    i++;
  if (body[i] !== 0x7b) return undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof parsed === 'object' ? promptOf(parsed) : undefined;
  } catch {
    return undefined;
  }
}
