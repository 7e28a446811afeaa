/**
 * `LLMConfig`, as YAML spells it (Ray Serve LLM's snake_case): which model, from where, on which
 * engine with which engine settings, and the deployment options of its server. `args` of the
 * OpenAI application builder carry a list of them.
 */
import { z } from 'zod';
import { RaylineError } from '../errors.ts';
import { formatIssues, issuesToText } from '../schema/issues.ts';
import type { DeploymentOptions } from '../schema/options.ts';

/** Ray Serve LLM's default `stream_batching_interval_ms` (its MODEL_RESPONSE_BATCH_TIMEOUT_MS). */
export const STREAM_BATCHING_INTERVAL_MS = 50;

export const engineKwargsSchema = z.strictObject({
  /** Tokens per sequence (prompt plus completion); llama.cpp's n_ctx. */
  n_ctx: z.number().int().positive().optional(),
  /** CPU threads; keep at or below the replica's free cores. */
  threads: z.number().int().positive().optional(),
  /** Layers offloaded to the GPU; 0 runs on the CPU. */
  n_gpu_layers: z.number().int().min(0).optional(),
  /** Sequences decoded together (continuous batching). */
  parallel: z.number().int().positive().max(256).optional(),
});

/** `engine: openai-upstream`: a running OpenAI-compatible server, or the command that starts one. */
export const upstreamEngineKwargsSchema = z
  .strictObject({
    /** `http://host:port/v1` of a running server. */
    base_url: z.url().optional(),
    api_key: z.string().optional(),
    /** The server the replica starts, argv style (e.g. `['vllm', 'serve', 'model']`). */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** The port the started server listens on (default 8000). */
    port: z.number().int().min(1).max(65535).optional(),
    /** Answers 2xx once the started server serves: `/health` (default, vLLM) or `/v1/models`. */
    health_path: z.string().startsWith('/').optional(),
    startup_timeout_s: z.number().positive().optional(),
  })
  .refine((k) => (k.base_url === undefined) !== (k.command === undefined), {
    message: 'give exactly one of base_url and command',
  });

export const llmConfigSchema = z
  .strictObject({
    model_loading_config: z.strictObject({
      /** The name clients send as `model`. */
      model_id: z.string().min(1),
      /**
       * A local GGUF path (relative paths resolve against the replica's working directory), or
       * `tiny:seed=N` for the generated tiny model (written to the temp folder on first use). With
       * `engine: openai-upstream`, the name the upstream server knows the model by.
       */
      model_source: z.string().min(1),
    }),
    engine: z.enum(['llama.cpp', 'openai-upstream']).default('llama.cpp'),
    /** Checked against the engine's own schema below. */
    engine_kwargs: z.record(z.string(), z.unknown()).default({}),
    /** Deployment options of this model's server, snake_case as in a serve config's `deployments`. */
    deployment_config: z.record(z.string(), z.unknown()).default({}),
    /** Ray Serve LLM's opt-in knobs. */
    experimental_configs: z
      .strictObject({
        /**
         * How long a stream holds generated text before sending it, after its first chunk (which
         * leaves at once): one message per interval instead of per token. Ray's default, 50 ms;
         * 0 sends each token as soon as the reader takes it.
         */
        stream_batching_interval_ms: z.number().min(0).max(60_000).default(STREAM_BATCHING_INTERVAL_MS),
      })
      .prefault({}),
    /**
     * Ray Serve LLM's LoRA serving: clients ask for `MODEL_ID:ADAPTER`, and the adapter's GGUF file
     * `ADAPTER.gguf` under `dynamic_lora_loading_path` (a folder, an https:// URL or hf://owner/repo
     * path) is loaded on first use, downloaded into the model cache if remote.
     */
    lora_config: z
      .strictObject({
        dynamic_lora_loading_path: z.string().min(1),
        /** Adapters a replica keeps loaded; past it the least recently used idle one is unloaded. */
        max_num_adapters_per_replica: z.number().int().positive().max(256).default(16),
      })
      .optional(),
    /** Informational for now: the GPU kind the replica wants (Ray's accelerator_type). */
    accelerator: z.string().optional(),
  })
  .superRefine((config, ctx) => {
    if (config.lora_config && config.engine === 'openai-upstream') {
      ctx.addIssue({
        code: 'custom',
        message: 'LoRA adapters are served by the llama.cpp engine; an upstream server loads its own',
        path: ['lora_config'],
      });
    }
    const schema = config.engine === 'openai-upstream' ? upstreamEngineKwargsSchema : engineKwargsSchema;
    const result = schema.safeParse(config.engine_kwargs);
    if (result.success) return;
    for (const issue of result.error.issues) {
      ctx.addIssue({ code: 'custom', message: issue.message, path: ['engine_kwargs', ...issue.path] });
    }
  });

export type LLMConfigInput = z.input<typeof llmConfigSchema>;
export type LLMConfig = z.output<typeof llmConfigSchema>;

export const openAIAppArgsSchema = z.strictObject({
  llm_configs: z.array(llmConfigSchema).min(1),
  /**
   * Deployment options of the OpenAI ingress. With one model and none given, the model's own
   * replicas serve the OpenAI API (no separate ingress).
   */
  ingress_deployment_config: z.record(z.string(), z.unknown()).optional(),
});

export type OpenAIAppArgs = z.output<typeof openAIAppArgsSchema>;

/** Validates builder args; an error names every bad field. */
export function parseOpenAIAppArgs(args: unknown): OpenAIAppArgs {
  const result = openAIAppArgsSchema.safeParse(args);
  if (!result.success) {
    const issues = formatIssues(result.error);
    throw new RaylineError('RL_CONFIG_INVALID', `invalid LLM app args: ${issuesToText(issues)}`, { issues });
  }
  const ids = result.data.llm_configs.map((c) => c.model_loading_config.model_id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined) {
    throw new RaylineError('RL_CONFIG_INVALID', `llm_configs: model_id '${dup}' appears more than once`);
  }
  return result.data;
}

/** A snake_case deployment_config in the camelCase `deployment()` takes; user_config stays as is. */
export function deploymentOptionsFromConfig(config: Record<string, unknown>): DeploymentOptions {
  const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const convert = (value: unknown, key: string): unknown => {
    if (key === 'user_config' || key === 'resources' || key === 'placement_group_bundles') return value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), convert(v, k)]));
  };
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [camel(k), convert(v, k)]),
  ) as DeploymentOptions;
}
