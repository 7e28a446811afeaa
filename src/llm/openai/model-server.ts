/**
 * One model's deployment: its engine (an in-process `LLMServer`) and the OpenAI surface in front of
 * it. An app of one model is just this deployment: a request then crosses one process each way
 * (proxy → replica) instead of two (proxy → ingress → server), which was most of what Rayline added
 * to time to first token, and every streamed chunk wakes one process fewer. Behind an
 * `OpenAIIngress` (several models), the ingress calls `generate`, `embed` and `stats` through a
 * handle. Every model deployment answers both ways, so an update that adds or removes models keeps
 * serving while the old replicas still run.
 */

import type { LLMConfigInput } from '../config.ts';
import type { Embeddings, EngineStats } from '../engine/types.ts';
import {
  LLMServer,
  type ServerEmbedRequest,
  type ServerEvent,
  type ServerGenerateRequest,
} from '../server.ts';
import { OpenAIIngress } from './ingress.ts';

export class OpenAIModelServer extends OpenAIIngress {
  readonly #server: LLMServer;

  constructor(config: LLMConfigInput) {
    const server = new LLMServer(config);
    super({ [server.modelId]: server });
    this.#server = server;
  }

  generate(request: ServerGenerateRequest): AsyncGenerator<ServerEvent> {
    return this.#server.generate(request);
  }

  embed(request: ServerEmbedRequest): Promise<Embeddings> {
    return this.#server.embed(request);
  }

  countTokens(text: string): Promise<number> {
    return this.#server.countTokens(text);
  }

  tokenize(request: Parameters<LLMServer['tokenize']>[0]): Promise<number[]> {
    return this.#server.tokenize(request);
  }

  detokenize(tokens: number[]): Promise<string> {
    return this.#server.detokenize(tokens);
  }

  adapters(): Promise<string[]> {
    return this.#server.adapters();
  }

  stats(): Promise<EngineStats> {
    return this.#server.stats();
  }

  reconfigure(userConfig: unknown): Promise<void> {
    return this.#server.reconfigure(userConfig);
  }

  checkHealth(): void {
    this.#server.checkHealth();
  }
}
