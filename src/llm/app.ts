/**
 * The OpenAI application builder, usable as a serve config's `import_path` with `args`:
 *
 *   import_path: path/to/module:buildOpenAIApp
 *   args: {llm_configs: [{model_loading_config: {model_id: m, model_source: /models/m.gguf}}]}
 *
 * One `LLMServer` deployment per model (named `LLMServer_<model_id>`, its options from
 * `deployment_config`) behind one `OpenAIIngress` that routes by the request's `model`.
 */
import type { Application } from '../serve/deployment.ts';
import { Deployment } from '../serve/deployment.ts';
import { deploymentOptionsFromConfig, type LLMConfigInput, parseOpenAIAppArgs } from './config.ts';
import { OpenAIIngress } from './openai/ingress.ts';
import { LLMServer } from './server.ts';

/** Deployment names allow what a URL path segment and a metric label do without escaping. */
export function serverDeploymentName(modelId: string): string {
  return `LLMServer_${modelId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

export function buildOpenAIApp(args: Record<string, unknown>): Application<OpenAIIngress> {
  const parsed = parseOpenAIAppArgs(args);
  const servers: Record<string, Application<LLMServer>> = {};
  for (const config of parsed.llm_configs) {
    const id = config.model_loading_config.model_id;
    const server = new Deployment<LLMServer, [LLMConfigInput]>(LLMServer, {
      // Several sequences decode together in one replica, so it takes more than Ray's default of 5.
      maxOngoingRequests: 64,
      ...deploymentOptionsFromConfig(config.deployment_config),
      name: serverDeploymentName(id),
    });
    servers[id] = server.bind(config);
  }
  const ingress = new Deployment<OpenAIIngress, [Record<string, Application<LLMServer>>]>(OpenAIIngress, {
    maxOngoingRequests: 256,
    ...deploymentOptionsFromConfig(parsed.ingress_deployment_config),
    name: 'OpenAIIngress',
  });
  return ingress.bind(servers);
}
