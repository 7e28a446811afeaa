/**
 * The NLP behind the pipeline's deployments: plain functions and classes with no Rayline in them, so
 * they can be tested on their own. Models are built in constructors, never at import: every replica
 * imports the whole application module, and only the replicas that use a model should pay for it.
 */
import { encode } from 'gpt-tokenizer/encoding/cl100k_base';
import model from 'wink-eng-lite-web-model';
import winkNLP, { type ItemSentence, type ItemToken, type ItsFunction, type WinkMethods } from 'wink-nlp';
import bm25Vectorizer from 'wink-nlp/utilities/bm25-vectorizer.js';
import similarity from 'wink-nlp/utilities/similarity.js';

export interface Preprocessed {
  /** The normalised text. */
  text: string;
  /** cl100k_base token ids of the normalised text. */
  tokens: number[];
  /** Number of tokens. */
  length: number;
}

/** NFKC, whitespace runs collapsed to one space, trimmed, lowercased. */
export function normalise(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}

export function preprocess(text: string): Preprocessed {
  const normalised = normalise(text);
  // Special-token strings such as "<|endoftext|>" in user text are encoded as ordinary text.
  const tokens = encode(normalised, { disallowedSpecial: new Set() });
  return { text: normalised, tokens, length: tokens.length };
}

export type SentimentLabel = 'POSITIVE' | 'NEGATIVE' | 'NEUTRAL';

export interface Sentiment {
  label: SentimentLabel;
  /** Polarity in [-1, 1]: below -0.05 is NEGATIVE, above 0.05 POSITIVE. */
  score: number;
}

const NEUTRAL_BAND = 0.05;

/** Lexicon-based sentiment (wink-nlp's `its.sentiment`, which handles negation and emphasis). */
export class SentimentAnalyzer {
  readonly #nlp: WinkMethods = winkNLP(model);

  analyze(text: string): Sentiment {
    const score = Number(this.#nlp.readDoc(text).out(this.#nlp.its.sentiment));
    const label: SentimentLabel =
      score > NEUTRAL_BAND ? 'POSITIVE' : score < -NEUTRAL_BAND ? 'NEGATIVE' : 'NEUTRAL';
    return { label, score: Math.round(score * 1000) / 1000 };
  }
}

const MIN_WORDS = 30;

/**
 * Extractive summary: each sentence becomes a BM25 vector of its content-word stems; the sentences
 * closest (cosine) to the centroid of all of them are kept, in their original order.
 */
export class ExtractiveSummarizer {
  readonly #nlp: WinkMethods = winkNLP(model);
  readonly #ratio: number;

  /** `ratio`: the share of sentences to keep (at least one). */
  constructor(ratio = 0.3) {
    this.#ratio = ratio;
  }

  summarize(text: string): string {
    const { its } = this.#nlp;
    // wink's typings declare its.stem with parameters that match no ItsFunction; it works with out().
    const stem = its.stem as unknown as ItsFunction<string>;
    const doc = this.#nlp.readDoc(text);
    const words = doc
      .tokens()
      .filter((t) => t.out(its.type) === 'word')
      .length();
    const sentences: { text: string; terms: string[] }[] = [];
    doc.sentences().each((s: ItemSentence) => {
      const terms: string[] = [];
      s.tokens()
        .filter((t) => t.out(its.type) === 'word' && !t.out(its.stopWordFlag))
        .each((t: ItemToken) => {
          terms.push(t.out(stem));
        });
      sentences.push({ text: s.out(), terms });
    });
    if (words < MIN_WORDS || sentences.length < 2) return text;

    const bm25 = bm25Vectorizer();
    for (const s of sentences) bm25.learn(s.terms);
    const vectors = sentences.map((s) => bm25.vectorOf(s.terms));
    const centroid = vectors[0].map((_, i) => vectors.reduce((sum, v) => sum + v[i], 0) / vectors.length);
    const ranked = vectors
      .map((v, index) => ({
        index,
        score: v.some((x) => x !== 0) ? similarity.vector.cosine(v, centroid) : -1,
      }))
      .sort((a, b) => b.score - a.score);
    const keep = Math.max(1, Math.round(sentences.length * this.#ratio));
    return ranked
      .slice(0, keep)
      .map((r) => r.index)
      .sort((a, b) => a - b)
      .map((i) => sentences[i].text)
      .join(' ');
  }
}
