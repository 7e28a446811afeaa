/**
 * Tool calling on an engine that generates text (llama.cpp). With `tool_choice` `required` or a
 * named function the reply is JSON held to a schema of the calls (as vLLM does with guided
 * decoding), so even a model that was never trained for tools answers valid arguments. With `auto`
 * the model writes calls in its chat template's own syntax (`ToolCallScanner` finds them in the
 * stream) or answers text.
 */
import { randomUUID } from 'node:crypto';
import { toGrammarSchema } from './json-schema.ts';
import type { JsonSchema, ToolCall, ToolCallDelta, ToolsRequest } from './types.ts';

const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

export const newToolCallId = (): string => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

/** The functions a `required` or named choice allows, with their index in the request. */
function allowed(tools: ToolsRequest): Array<{ index: number; name: string; parameters?: JsonSchema }> {
  const all = tools.definitions.map((d, index) => ({ ...d, index }));
  const { choice } = tools;
  return typeof choice === 'object' ? all.filter((d) => d.name === choice.name) : all;
}

/**
 * The grammar schema a `required` or named choice holds the reply to: a named function's arguments
 * object; for `required`, `{name, arguments}` of any function, or an array of them when calls may
 * be parallel. Throws `UnsupportedSchemaError` naming `tools.N.function.parameters...`.
 */
export function forcedToolCallSchema(tools: ToolsRequest): JsonSchema {
  const functions = allowed(tools).map((d) => ({
    name: d.name,
    parameters: toGrammarSchema(d.parameters ?? NO_ARGUMENTS, `tools.${d.index}.function.parameters`),
  }));
  if (typeof tools.choice === 'object') return functions[0].parameters;
  const calls = functions.map((f) => {
    const { $defs, ...parameters } = f.parameters;
    return {
      type: 'object',
      properties: { name: { const: f.name }, arguments: parameters },
      ...($defs ? { $defs } : {}),
    };
  });
  const call = calls.length === 1 ? calls[0] : { oneOf: calls };
  return tools.parallel ? { type: 'array', items: call, minItems: 1 } : call;
}

/** The calls in a reply generated under `forcedToolCallSchema`, or undefined if it is not complete JSON. */
export function forcedToolCalls(tools: ToolsRequest, text: string): ToolCall[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof tools.choice === 'object') {
    return [{ id: newToolCallId(), name: tools.choice.name, arguments: JSON.stringify(value) }];
  }
  const list = (tools.parallel ? value : [value]) as Array<{ name: string; arguments: unknown }>;
  return list.map((c) => ({ id: newToolCallId(), name: c.name, arguments: JSON.stringify(c.arguments) }));
}

/** How a chat template writes a call: `PREFIX name PARAMS_PREFIX {json} SUFFIX`. */
export interface ToolCallSyntax {
  prefix: string;
  paramsPrefix: string;
  suffix: string;
}

type ScanResult = { content: string; calls: ToolCallDelta[]; done: boolean };

/**
 * Splits streamed text into content and calls in a template's syntax. Text that could be the start
 * of a call is held back until the next pieces tell; a call is given out once its arguments are
 * complete JSON. After a call, anything but another call (when parallel calls are allowed) ends
 * the reply (`done`): the model is waiting for the results.
 */
export class ToolCallScanner {
  readonly #syntax: ToolCallSyntax;
  readonly #names: Set<string>;
  readonly #parallel: boolean;
  #held = '';
  #calls = 0;
  #done = false;

  constructor(syntax: ToolCallSyntax, names: Iterable<string>, parallel: boolean) {
    this.#syntax = syntax;
    this.#names = new Set(names);
    this.#parallel = parallel;
  }

  get callCount(): number {
    return this.#calls;
  }

  push(text: string): ScanResult {
    if (this.#done) return { content: '', calls: [], done: true };
    this.#held += text;
    const out: ScanResult = { content: '', calls: [], done: false };
    while (true) {
      const { prefix } = this.#syntax;
      const at = this.#held.indexOf(prefix);
      if (at === -1) {
        const keep = partialSuffix(this.#held, prefix);
        const before = this.#held.slice(0, this.#held.length - keep);
        if (this.#calls > 0 && before.trim() !== '') return this.#finish(out);
        if (this.#calls === 0) out.content += before;
        this.#held = this.#held.slice(this.#held.length - keep);
        return out;
      }
      const before = this.#held.slice(0, at);
      if (this.#calls > 0 && before.trim() !== '') return this.#finish(out);
      if (this.#calls === 0) out.content += before;
      const call = this.#parseCall(this.#held.slice(at + prefix.length));
      if (call === 'incomplete') {
        this.#held = this.#held.slice(at);
        return out;
      }
      if (call === 'invalid') {
        // Not a call after all: what the model wrote is content.
        if (this.#calls > 0) return this.#finish(out);
        out.content += this.#held;
        this.#held = '';
        return out;
      }
      out.calls.push({
        index: this.#calls++,
        id: newToolCallId(),
        name: call.name,
        arguments: call.arguments,
      });
      this.#held = call.rest;
      if (!this.#parallel) return this.#finish(out);
    }
  }

  /**
   * At the end of generation: a call whose arguments are complete and whose suffix was cut short
   * (by an end-of-generation token, which templates often end calls with) is a call; other held
   * text that was not a call is content.
   */
  flush(): { content: string; calls: ToolCallDelta[] } {
    const held = this.#held;
    this.#held = '';
    if (this.#done || !held) return { content: '', calls: [] };
    const at = held.indexOf(this.#syntax.prefix);
    if (at !== -1 && (this.#calls === 0 ? true : held.slice(0, at).trim() === '')) {
      const call = this.#parseCall(held.slice(at + this.#syntax.prefix.length), true);
      if (typeof call === 'object') {
        const delta = {
          index: this.#calls++,
          id: newToolCallId(),
          name: call.name,
          arguments: call.arguments,
        };
        return { content: this.#calls === 1 ? held.slice(0, at) : '', calls: [delta] };
      }
    }
    return { content: this.#calls === 0 ? held : '', calls: [] };
  }

  #finish(out: ScanResult): ScanResult {
    this.#done = true;
    this.#held = '';
    out.done = true;
    return out;
  }

  /** `ended`: generation is over, so a suffix cut short ends the call. */
  #parseCall(
    text: string,
    ended = false,
  ): { name: string; arguments: string; rest: string } | 'incomplete' | 'invalid' {
    const { paramsPrefix, suffix } = this.#syntax;
    const body = text.replace(/^ /, '');
    const open = body.indexOf(paramsPrefix);
    if (open === -1) {
      // The name is still being written, or this is no call.
      return /^[A-Za-z0-9_.-]{0,64}$/.test(body) ? 'incomplete' : 'invalid';
    }
    const name = body.slice(0, open).trim();
    if (!this.#names.has(name)) return 'invalid';
    const params = body.slice(open + paramsPrefix.length);
    const end = jsonEnd(params);
    if (end === 'incomplete') return 'incomplete';
    if (end === 'invalid') return 'invalid';
    const after = params.slice(end);
    let rest: string;
    if (after.length < suffix.length && suffix.startsWith(after)) {
      if (!ended) return 'incomplete';
      rest = '';
    } else if (after.startsWith(suffix)) rest = after.slice(suffix.length);
    else return 'invalid';
    const json = params.slice(0, end).trim();
    try {
      return { name, arguments: JSON.stringify(JSON.parse(json)), rest };
    } catch {
      return 'invalid';
    }
  }
}

/** The length of the longest end of `text` that begins `prefix` (a call that may be starting). */
function partialSuffix(text: string, prefix: string): number {
  for (let n = Math.min(prefix.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(prefix.slice(0, n))) return n;
  }
  return 0;
}

/** Where the JSON object at the start of `text` (after spaces) ends. */
function jsonEnd(text: string): number | 'incomplete' | 'invalid' {
  let i = 0;
  while (i < text.length && /\s/.test(text[i])) i++;
  if (i === text.length) return 'incomplete';
  if (text[i] !== '{') return 'invalid';
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return 'incomplete';
}
