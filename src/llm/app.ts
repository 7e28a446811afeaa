/**
 * The OpenAI application builder, usable as a serve config's `import_path` with `args`:
 *
 *   import_path: path/to/module:buildOpenAIApp
 *   args: {llm_configs: [{model_loading_config: {model_id: m, model_source: /models/m.gguf}}]}
 *
 * One deployment per model (`LLMServer_<model_id>`, an `OpenAIModelServer`, its options from
 * `deployment_config`) behind one `OpenAIIngress` that routes by the request's `model`. A single
 * model without `ingress_deployment_config` is that deployment alone: its replicas serve the OpenAI
 * API themselves, one process hop fewer each way.
 */
import type { DeploymentOptions } from '../schema/options.ts';
import type { Application } from '../serve/deployment.ts';
import { Deployment } from '../serve/deployment.ts';
import {
  deploymentOptionsFromConfig,
  type LLMConfig,
  type LLMConfigInput,
  parseOpenAIAppArgs,
} from './config.ts';
import { OpenAIIngress } from './openai/ingress.ts';
import { OpenAIModelServer } from './openai/model-server.ts';

/** Deployment names allow what a URL path segment and a metric label do without escaping. */
export function serverDeploymentName(modelId: string): string {
  return `LLMServer_${modelId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/**
 * Requests an LLM replica holds at once (Ray Serve's default is 5, for one-at-a-time models).
 * Several sequences decode together in one replica, so it takes many more. Ray Serve LLM leaves
 * both limits effectively unbounded (1e9, `RAY_SERVE_LLM_DEFAULT_MAX_ONGOING_REQUESTS` and
 * `..._MAX_TARGET_ONGOING_REQUESTS` in its constants) and lets vLLM queue; a bounded value keeps
 * 429s and autoscaling meaningful here.
 */
export const LLM_MAX_ONGOING_REQUESTS = 64;
/** Autoscaling's target per LLM replica (Ray Serve's default is 2): half of the cap. */
export const LLM_TARGET_ONGOING_REQUESTS = 32;

/**
 * How callers pick an LLM replica: Ray Serve LLM's `PrefixCacheAffinityRouter`, so prompts sharing
 * a prefix (a system prompt, few-shot examples) reach the replica whose engine has its KV cache,
 * while queues are balanced. `deployment_config.request_router_config` replaces it.
 */
export const LLM_REQUEST_ROUTER = { requestRouterClass: 'prefix_cache_affinity' };

/** A model's server options: its deployment_config over the LLM defaults. */
export function llmServerOptions(config: LLMConfig): DeploymentOptions {
  const given = deploymentOptionsFromConfig(config.deployment_config);
  const autoscaling = given.autoscalingConfig
    ? {
        autoscalingConfig: { targetOngoingRequests: LLM_TARGET_ONGOING_REQUESTS, ...given.autoscalingConfig },
      }
    : {};
  // A model takes seconds to minutes to load (or download), an upstream server to start. With a
  // user_config the replica's reconfigure hook waits for the engine, as Ray's async LLMServer
  // constructor does: a replica is RUNNING only once it can serve, so a rolling update keeps the old
  // replicas until the new ones have their model, and a model that cannot load fails the deployment
  // (with the source named) instead of its requests.
  const userConfig = given.userConfig === undefined ? { userConfig: {} } : {};
  return {
    maxOngoingRequests: LLM_MAX_ONGOING_REQUESTS,
    requestRouterConfig: LLM_REQUEST_ROUTER,
    ...given,
    ...autoscaling,
    ...userConfig,
  };
}

export function buildOpenAIApp(args: Record<string, unknown>): Application<OpenAIIngress> {
  const parsed = parseOpenAIAppArgs(args);
  const servers: Record<string, Application<OpenAIModelServer>> = {};
  for (const config of parsed.llm_configs) {
    const id = config.model_loading_config.model_id;
    const server = new Deployment<OpenAIModelServer, [LLMConfigInput]>(OpenAIModelServer, {
      ...llmServerOptions(config),
      name: serverDeploymentName(id),
    });
    servers[id] = server.bind(config);
  }
  // One model needs no ingress: its own replicas serve the OpenAI API.
  const models = Object.values(servers);
  if (models.length === 1 && parsed.ingress_deployment_config === undefined) return models[0];
  const ingress = new Deployment<OpenAIIngress, [Record<string, Application<OpenAIModelServer>>]>(
    OpenAIIngress,
    {
      maxOngoingRequests: 256,
      ...deploymentOptionsFromConfig(parsed.ingress_deployment_config ?? {}),
      name: 'OpenAIIngress',
    },
  );
  return ingress.bind(servers);
}
