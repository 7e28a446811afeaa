/** LLM serving: the OpenAI-compatible application, its configuration, the server and the engines. */
export {
  buildOpenAIApp,
  LLM_MAX_ONGOING_REQUESTS,
  LLM_REQUEST_ROUTER,
  LLM_TARGET_ONGOING_REQUESTS,
  llmServerOptions,
  serverDeploymentName,
} from './app.ts';
export {
  type LLMConfig,
  type LLMConfigInput,
  llmConfigSchema,
  type OpenAIAppArgs,
  openAIAppArgsSchema,
  parseOpenAIAppArgs,
  upstreamEngineKwargsSchema,
} from './config.ts';
export { LLAMA_CPP_DEFAULTS, LlamaCppEngine, type LlamaCppOptions } from './engine/llama-cpp.ts';
export { OpenAIUpstreamEngine, type OpenAIUpstreamOptions } from './engine/openai-upstream.ts';
export type * from './engine/types.ts';
export { GenerationMetrics } from './metrics.ts';
export {
  isRemoteSource,
  type ModelSource,
  modelCacheDir,
  modelPath,
  parseModelSource,
} from './model-source.ts';
export { OpenAIIngress } from './openai/ingress.ts';
export { OpenAIModelServer } from './openai/model-server.ts';
export {
  LLMServer,
  type ServerEmbedRequest,
  type ServerEvent,
  type ServerGenerateRequest,
} from './server.ts';
