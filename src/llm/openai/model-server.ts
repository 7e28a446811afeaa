/**
 * One model's engine and its OpenAI surface in one deployment: what the app builder makes for a
 * single model. A request then crosses one process each way (proxy → replica) instead of two (proxy
 * → ingress → server), which was most of what Rayline added to time to first token, and every
 * streamed chunk wakes one process fewer.
 */
import type { LLMConfigInput } from '../config.ts';
import { LLMServer } from '../server.ts';
import { OpenAIIngress } from './ingress.ts';

export class OpenAIModelServer extends OpenAIIngress {
  readonly #server: LLMServer;

  constructor(config: LLMConfigInput) {
    const server = new LLMServer(config);
    super({ [server.modelId]: server });
    this.#server = server;
  }

  reconfigure(userConfig: unknown): Promise<void> {
    return this.#server.reconfigure(userConfig);
  }

  checkHealth(): void {
    this.#server.checkHealth();
  }
}
