/**
 * Session affinity: calls of one session (an `x-session-id` header, or the OpenAI body's `user` or
 * `prompt_cache_key`) go to the same replica, so its engine keeps the conversation's KV cache, while
 * that replica is in the routing table (healthy) and not overloaded. The replica is picked by
 * rendezvous hashing, a consistent hash: when replicas come or go, only the sessions of those move.
 * The pure policy; `DeploymentRouter` asks it first on routers with prefix cache affinity.
 */
import { PROMPT_BODY_LIMIT } from './prefix-affinity.ts';

export const SESSION_HEADER = 'x-session-id';

/**
 * The session of an HTTP call as the proxy sends it (`meta.h.headers`, the JSON body). A LoRA
 * adapter (`"model": "MODEL_ID:ADAPTER"`) comes first: its requests go where it is loaded.
 */
export function sessionOfHttp(meta: unknown, body: Uint8Array): string | undefined {
  const headers = (meta as { h?: { headers?: Record<string, string> } } | undefined)?.h?.headers;
  if (!headers) return undefined;
  if (body.length > PROMPT_BODY_LIMIT) return headers[SESSION_HEADER] || undefined;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.length);
  const adapter = adapterModel(bytes);
  if (adapter) return adapter;
  const header = headers[SESSION_HEADER];
  if (header) return header;
  if (body.length === 0) return undefined;
  // As keys (a colon follows): `"role": "user"` in chat messages is no session.
  if (bytes.indexOf('"user":') === -1 && bytes.indexOf('"prompt_cache_key":') === -1) return undefined;
  try {
    return sessionOfFields(JSON.parse(bytes.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** The body's `model` when it names an adapter (`MODEL_ID:ADAPTER`), read without parsing the body. */
function adapterModel(bytes: Buffer): string | undefined {
  const at = bytes.indexOf('"model"');
  if (at === -1) return undefined;
  const match = /^"model"\s*:\s*"([^"\\]{1,256})"/.exec(bytes.subarray(at, at + 300).toString('utf8'));
  const model = match?.[1];
  return model && model.indexOf(':') > 0 ? model : undefined;
}

/** The session of a handle call: the first object argument's `session`. */
export function sessionOfArgs(args: readonly unknown[]): string | undefined {
  for (const arg of args) {
    if (arg !== null && typeof arg === 'object') {
      const session = (arg as { session?: unknown }).session;
      return typeof session === 'string' && session ? session : undefined;
    }
  }
  return undefined;
}

/** `user`, else `prompt_cache_key`, of a parsed OpenAI body. */
export function sessionOfFields(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { user, prompt_cache_key } = value as { user?: unknown; prompt_cache_key?: unknown };
  if (typeof user === 'string' && user) return user;
  if (typeof prompt_cache_key === 'string' && prompt_cache_key) return prompt_cache_key;
  return undefined;
}

export interface SessionCandidate {
  replicaId: string;
  queueLength: number;
}

/**
 * The session's replica: the candidate with the highest hash of (session, replica) that has room
 * (queue below `maxOngoing`) and is not more than `imbalancedThreshold` requests busier than the
 * least busy candidate; undefined when none qualifies (the caller then routes as usual).
 */
export function chooseBySession<C extends SessionCandidate>(
  session: string,
  candidates: readonly C[],
  maxOngoing: number,
  imbalancedThreshold: number,
): C | undefined {
  let least = Number.POSITIVE_INFINITY;
  for (const c of candidates) least = Math.min(least, c.queueLength);
  const base = fnv1a(session, FNV_OFFSET);
  let best: C | undefined;
  let bestScore = -1;
  for (const c of candidates) {
    if (c.queueLength >= maxOngoing || c.queueLength - least > imbalancedThreshold) continue;
    const score = mix(fnv1a(c.replicaId, base));
    if (score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

const FNV_OFFSET = 0x811c9dc5;

function fnv1a(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finalizer: spreads FNV's output so that close inputs score far apart. */
function mix(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
