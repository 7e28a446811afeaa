/**
 * User documents (serve configs as YAML or JSON) parsed with bounds. YAML anchors make a shared
 * graph that a few hundred bytes can expand into billions of nodes, and a deep enough nesting
 * breaks every recursive walk (JSON.stringify, comparisons, the REST answer), so a document is
 * measured as it would be written out in full, with both its depth and its expanded size
 * capped, and the limit named in the error. JSON refuses duplicate keys, as YAML does.
 */
import yaml from 'js-yaml';
import type { ValidationIssue } from './issues.ts';

export interface SizeLimits {
  /** Nesting of objects and arrays; the top level is depth 1. */
  maxDepth: number;
  /** Size written out as JSON, after every alias is expanded. */
  maxBytes: number;
}

/** A whole serve config (the REST API takes bodies up to 16 MiB). */
export const documentLimits: SizeLimits = { maxDepth: 64, maxBytes: 16 * 1024 * 1024 };

/** `args` and `user_config`: stored, compared and sent to every replica, so kept small. */
export const valueLimits: SizeLimits = { maxDepth: 32, maxBytes: 1024 * 1024 };

export type DocumentResult = { ok: true; value: unknown } | { ok: false; issues: ValidationIssue[] };

class LimitExceeded extends Error {}

/**
 * What is wrong with a value's size or shape, if anything: over `limits` (counted with aliases
 * expanded; the walk stops at the limit, so it costs at most that much) or holding a `__proto__`
 * key. `path` names the value in the message.
 */
export function sizeProblem(value: unknown, limits: SizeLimits, path: string): string | undefined {
  let bytes = 0;
  const add = (n: number) => {
    bytes += n;
    if (bytes > limits.maxBytes) {
      throw new LimitExceeded(
        `${path} is larger than ${limits.maxBytes} bytes written out as JSON (YAML aliases expanded); the limit is ${limits.maxBytes}`,
      );
    }
  };
  const walk = (v: unknown, depth: number, at: string): void => {
    if (v === null || typeof v !== 'object') {
      add(typeof v === 'string' ? v.length + 2 : 8);
      return;
    }
    if (depth > limits.maxDepth) {
      // The path to the deepest level would be as long as the nesting: name where it starts.
      const shown = at.length > 120 ? `${at.slice(0, 120)}…` : at;
      throw new LimitExceeded(
        `${shown} is nested deeper than ${limits.maxDepth} levels (the limit for ${path})`,
      );
    }
    if (Array.isArray(v)) {
      add(2);
      for (let i = 0; i < v.length; i++) {
        add(1);
        walk(v[i], depth + 1, `${at}[${i}]`);
      }
      return;
    }
    if (v instanceof Date || ArrayBuffer.isView(v)) {
      add(32);
      return;
    }
    add(2);
    for (const key of Object.keys(v)) {
      if (key === '__proto__') throw new LimitExceeded(`${at}: the key '__proto__' is not allowed`);
      add(key.length + 4);
      walk((v as Record<string, unknown>)[key], depth + 1, `${at}.${key}`);
    }
  };
  try {
    walk(value, 1, path);
    return undefined;
  } catch (error) {
    if (error instanceof LimitExceeded) return error.message;
    if (error instanceof RangeError) return `${path} is nested too deeply`;
    throw error;
  }
}

function bounded(value: unknown, limits: SizeLimits): DocumentResult {
  const problem = sizeProblem(value, limits, '(document)');
  return problem ? { ok: false, issues: [{ path: '(document)', message: problem }] } : { ok: true, value };
}

/** Parses YAML (a JSON document is YAML too); duplicate keys are an error, as js-yaml makes them. */
export function parseYamlDocument(text: string, limits: SizeLimits = documentLimits): DocumentResult {
  let value: unknown;
  try {
    value = yaml.load(text);
  } catch (error) {
    const message = error instanceof RangeError ? 'nested too deeply' : (error as Error).message;
    return { ok: false, issues: [{ path: '(document)', message: `not valid YAML: ${message}` }] };
  }
  return bounded(value ?? {}, limits);
}

/** Parses JSON, refusing duplicate keys (JSON.parse would keep the last one silently). */
export function parseJsonDocument(text: string, limits: SizeLimits = documentLimits): DocumentResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      issues: [{ path: '(document)', message: `not valid JSON: ${(error as Error).message}` }],
    };
  }
  const duplicate = duplicateKey(text);
  if (duplicate) return { ok: false, issues: [duplicate] };
  return bounded(value, limits);
}

interface Level {
  keys: Set<string> | undefined;
  /** The key being read in an object, the index in an array. */
  at: string | number;
}

/**
 * The first duplicate key of a valid JSON text, with its path. A string is a key exactly when a
 * colon follows it; one pass, no recursion, so any nesting JSON.parse accepted is fine here.
 */
function duplicateKey(text: string): ValidationIssue | undefined {
  const stack: Level[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      while (end < text.length) {
        const d = text.charCodeAt(end);
        if (d === 0x5c /* \ */) {
          escaped = true;
          end += 2;
          continue;
        }
        if (d === 0x22) break;
        end++;
      }
      let next = end + 1;
      while (next < text.length && /\s/.test(text[next])) next++;
      const top = stack[stack.length - 1];
      if (text.charCodeAt(next) === 0x3a /* : */ && top?.keys) {
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (top.keys.has(key)) {
          const path = [...stack.slice(0, -1).map((l) => l.at), key];
          let out = '';
          for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
          return { path: out, message: `duplicate key '${key}' (JSON keeps only the last one; refused)` };
        }
        top.keys.add(key);
        top.at = key;
      }
      i = end;
    } else if (c === 0x7b /* { */) stack.push({ keys: new Set(), at: '' });
    else if (c === 0x5b /* [ */) stack.push({ keys: undefined, at: 0 });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.at = (top.at as number) + 1;
    }
  }
  return undefined;
}
