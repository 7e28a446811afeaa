/** LLM serving: the OpenAI-compatible application, its configuration, the server and the engines. */
export { buildOpenAIApp, serverDeploymentName } from './app.ts';
export {
  type LLMConfig,
  type LLMConfigInput,
  llmConfigSchema,
  type OpenAIAppArgs,
  openAIAppArgsSchema,
  parseOpenAIAppArgs,
} from './config.ts';
export { LLAMA_CPP_DEFAULTS, LlamaCppEngine, type LlamaCppOptions } from './engine/llama-cpp.ts';
export type * from './engine/types.ts';
export { type ModelSource, modelPath, parseModelSource } from './model-source.ts';
export { OpenAIIngress } from './openai/ingress.ts';
export { LLMServer, type ServerEvent, type ServerGenerateRequest } from './server.ts';
