/**
 * Grammars for structured outputs on one llama.cpp model: node-llama-cpp's JSON-schema grammars,
 * made to end where the JSON ends, cached by schema; and the ban of partial-character tokens that
 * goes with them.
 */
import type { GbnfJsonSchema, Llama, LlamaModel, Token } from 'node-llama-cpp';
import { LlamaGrammar, TokenBias } from 'node-llama-cpp';
import type { JsonSchema } from './types.ts';

/** Grammars kept per model: building one takes milliseconds, and clients repeat their schemas. */
const GRAMMAR_CACHE_SIZE = 64;

/** The number of tokens in a model's vocabulary (infinite when its metadata does not say). */
export function vocabularySize(model: LlamaModel): number {
  return model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? Number.POSITIVE_INFINITY;
}

export class Grammars {
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #cache = new Map<string, Promise<LlamaGrammar>>();
  #partialCharacters: TokenBias | undefined;

  constructor(llama: Llama, model: LlamaModel) {
    this.#llama = llama;
    this.#model = model;
  }

  /** The grammar of a schema in the subset (json-schema.ts), complete at the JSON's end. */
  get(schema: JsonSchema): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.#cache.get(key);
    if (!grammar) {
      grammar = this.#build(schema);
      grammar.catch(() => this.#cache.delete(key));
      if (this.#cache.size >= GRAMMAR_CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, grammar);
    }
    return grammar;
  }

  async #build(schema: JsonSchema): Promise<LlamaGrammar> {
    const generated = await this.#llama.createGrammarForJsonSchema(
      schema as Readonly<GbnfJsonSchema> as never,
    );
    // node-llama-cpp's JSON grammars go on with newlines after the value (its chat stops on them);
    // without them the grammar is complete at the value's end and only end-of-generation is left.
    return new LlamaGrammar(this.#llama, {
      grammar: generated.grammar.replace(/ "\\n\\n\\n\\n" \[\\n\]\*$/m, ''),
    });
  }

  /**
   * Bans the tokens that are only part of a UTF-8 character (byte-fallback tokens). llama.cpp's
   * grammar lets invalid UTF-8 through without counting it, so under a grammar such tokens could
   * break JSON or a string's length bound; banned, the model writes only characters it has whole
   * tokens for.
   */
  get wholeCharacters(): TokenBias {
    if (this.#partialCharacters) return this.#partialCharacters;
    const bias = new TokenBias(this.#model.tokenizer);
    const size = vocabularySize(this.#model);
    for (let t = 0; t < size && Number.isFinite(size); t++) {
      const token = t as Token;
      if (!this.#model.isEogToken(token) && this.#model.detokenize([token]).includes('\uFFFD'))
        bias.set(token, 'never');
    }
    this.#partialCharacters = bias;
    return bias;
  }
}
