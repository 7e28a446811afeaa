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
  /** Output that must be JSON: any object, or matching a schema (llama.cpp: a grammar). */
  constraint?: OutputConstraint;
  /** Report each generated token's log probability and this many most likely alternatives (0 to 20). */
  logprobs?: number;
}

/** A JSON Schema, as clients send it. */
export type JsonSchema = Record<string, unknown>;

export type OutputConstraint =
  | { type: 'json_object' }
  /** `name` is the client's name for the schema (passed on to an upstream server). */
  | { type: 'json_schema'; schema: JsonSchema; name?: string };

/** A function the model may call (OpenAI's `tools[].function`). */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** A JSON Schema of the arguments object; absent means no arguments. */
  parameters?: JsonSchema;
}

/** `none`: never call; `auto`: the model decides; `required`: at least one call; `{name}`: that one. */
export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export interface ToolsRequest {
  definitions: ToolDefinition[];
  choice: ToolChoice;
  /** Whether one reply may hold several calls. */
  parallel: boolean;
}

/** A call the model made: `arguments` is the JSON text of the arguments object. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Part of a tool call as it streams: the first part of each index carries id and name. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  /** The UTF-8 bytes of `token`. */
  bytes: number[];
}

/** One generated token's log probability and the most likely alternatives at its position. */
export interface TokenLogprob extends TopLogprob {
  top: TopLogprob[];
}

export interface GenerateRequest {
  /** Text (tokenized with the model's BOS where the model wants one) or token ids as they are. */
  prompt: string | number[];
  sampling: SamplingParams;
  /** Functions the model may call; the prompt must document them (`applyChatTemplate` with the same tools). */
  tools?: ToolsRequest;
  /** A LoRA adapter's GGUF file to generate with (engines that support adapters). */
  adapter?: string;
  /** Aborting stops generation at the next token and frees the sequence. */
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** A piece of generated text; `tokenCount` is the number of tokens it took. */
export interface TextDelta {
  text: string;
  tokenCount: number;
  /** With `sampling.logprobs`: one entry per token whose text is in `text`. */
  logprobs?: TokenLogprob[];
  /** Tool calls (or parts of them) the model made. */
  toolCalls?: ToolCallDelta[];
}

/** What `generate` returns: iterate the deltas; `final` settles when the iteration ends. */
export interface Generation extends AsyncIterable<TextDelta> {
  readonly final: Promise<{ finishReason: FinishReason; usage: Usage }>;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** An assistant message's calls. */
  toolCalls?: ToolCall[];
  /** A tool message: the call it answers. */
  toolCallId?: string;
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
  /** Token ids of a text; with `addSpecial`, the BOS the model wants first. */
  tokenize(text: string, addSpecial: boolean): Promise<number[]>;
  detokenize(tokens: readonly number[]): Promise<string>;
  /**
   * The prompt for a chat: from the model's chat template, or a plain `role: content` fallback;
   * with tools, documenting them the template's way.
   */
  applyChatTemplate(messages: readonly ChatMessage[], tools?: readonly ToolDefinition[]): string | number[];
  stats(): EngineStats;
  dispose(): Promise<void>;
}
