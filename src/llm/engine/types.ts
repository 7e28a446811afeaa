/**
 * The one interface every LLM engine implements: stream generated text for a prompt and sampling
 * parameters, embed texts, count tokens, and format chat messages. The OpenAI surface and the LLM server speak
 * only this, so an engine (llama.cpp today, an upstream OpenAI server later) is swappable.
 */

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Generation ends before the first occurrence of any of these; the stop string is not returned. */
  stop: string[];
  /** Same seed, same prompt, same parameters: same output. */
  seed?: number;
  /**
   * OpenAI's penalties (-2 to 2) on tokens already generated: each occurrence lowers a token's
   * logit by `frequencyPenalty`, any occurrence by `presencePenalty`. 0 (the default) is off.
   */
  frequencyPenalty?: number;
  presencePenalty?: number;
}

export interface GenerateRequest {
  /** Text (tokenized with the model's BOS where the model wants one) or token ids as they are. */
  prompt: string | number[];
  sampling: SamplingParams;
  /** Aborting stops generation at the next token and frees the sequence. */
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** A piece of generated text; `tokenCount` is the number of tokens it took. */
export interface TextDelta {
  text: string;
  tokenCount: number;
}

/** What `generate` returns: iterate the deltas; `final` settles when the iteration ends. */
export interface Generation extends AsyncIterable<TextDelta> {
  readonly final: Promise<{ finishReason: FinishReason; usage: Usage }>;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface EngineStats {
  /** Every token this engine has generated since it started: grows while anything generates. */
  generatedTokens: number;
  activeRequests: number;
  queuedRequests: number;
}

/** Embeddings of several inputs, in their order; `promptTokens` counts the tokens of all of them. */
export interface Embeddings {
  vectors: number[][];
  promptTokens: number;
}

export interface EmbedRequest {
  input: string[];
  /** Passed on to engines whose model can shorten its vectors; others answer with their own size. */
  dimensions?: number;
  signal?: AbortSignal;
}

export interface LLMEngine {
  generate(request: GenerateRequest): Generation;
  embed(request: EmbedRequest): Promise<Embeddings>;
  countTokens(text: string): number;
  /** The prompt for a chat: from the model's chat template, or a plain `role: content` fallback. */
  applyChatTemplate(messages: readonly ChatMessage[]): string | number[];
  stats(): EngineStats;
  dispose(): Promise<void>;
}
