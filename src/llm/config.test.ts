/** LLMConfig validation, deployment options from YAML, and model sources. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLM_REQUEST_ROUTER, llmServerOptions } from './app.ts';
import { deploymentOptionsFromConfig, parseOpenAIAppArgs } from './config.ts';
import { parseModelSource } from './model-source.ts';

test('args get defaults and errors name the field', () => {
  const args = parseOpenAIAppArgs({
    llm_configs: [{ model_loading_config: { model_id: 'm', model_source: 'tiny:seed=1' } }],
  });
  assert.equal(args.llm_configs[0].engine, 'llama.cpp');
  assert.deepEqual(args.llm_configs[0].engine_kwargs, {});
  assert.throws(
    () =>
      parseOpenAIAppArgs({
        llm_configs: [
          { model_loading_config: { model_id: 'm', model_source: 'x' }, engine_kwargs: { parallel: 0 } },
        ],
      }),
    /llm_configs\[0\]\.engine_kwargs\.parallel/,
  );
  assert.throws(
    () =>
      parseOpenAIAppArgs({
        llm_configs: [{ model_loading_config: { model_id: 'm', model_source: 'x' }, engine: 'vllm' }],
      }),
    /llm_configs\[0\]\.engine/,
  );
  assert.equal(args.llm_configs[0].experimental_configs.stream_batching_interval_ms, 50);
  // LoRA: the llama.cpp engine's, with Ray's default of 16 adapters per replica.
  const lora = (extra: Record<string, unknown>) =>
    parseOpenAIAppArgs({
      llm_configs: [{ model_loading_config: { model_id: 'm', model_source: 'x' }, ...extra }],
    }).llm_configs[0].lora_config;
  assert.deepEqual(lora({ lora_config: { dynamic_lora_loading_path: '/loras' } }), {
    dynamic_lora_loading_path: '/loras',
    max_num_adapters_per_replica: 16,
  });
  assert.throws(
    () =>
      lora({
        engine: 'openai-upstream',
        engine_kwargs: { base_url: 'http://x/v1' },
        lora_config: { dynamic_lora_loading_path: '/loras' },
      }),
    /llm_configs\[0\]\.lora_config: LoRA adapters are served by the llama.cpp engine/,
  );
  const withInterval = (experimental_configs: unknown) =>
    parseOpenAIAppArgs({
      llm_configs: [{ model_loading_config: { model_id: 'm', model_source: 'x' }, experimental_configs }],
    });
  assert.equal(
    withInterval({ stream_batching_interval_ms: 0 }).llm_configs[0].experimental_configs
      .stream_batching_interval_ms,
    0,
  );
  assert.throws(
    () => withInterval({ stream_batching_interval_ms: -1 }),
    /llm_configs\[0\]\.experimental_configs\.stream_batching_interval_ms/,
  );
  assert.throws(() => withInterval({ batching: 1 }), /llm_configs\[0\]\.experimental_configs.*batching/);
  const twice = { model_loading_config: { model_id: 'm', model_source: 'x' } };
  assert.throws(() => parseOpenAIAppArgs({ llm_configs: [twice, twice] }), /'m' appears more than once/);
});

test('deployment_config in snake_case becomes deployment() options; user_config keeps its keys', () => {
  assert.deepEqual(
    deploymentOptionsFromConfig({
      num_replicas: 2,
      autoscaling_config: { min_replicas: 1, target_ongoing_requests: 8 },
      ray_actor_options: { num_gpus: 1 },
      user_config: { some_key: 1 },
    }),
    {
      numReplicas: 2,
      autoscalingConfig: { minReplicas: 1, targetOngoingRequests: 8 },
      rayActorOptions: { numGpus: 1 },
      userConfig: { some_key: 1 },
    },
  );
});

test('model sources: tiny specs, and a missing file named in the error', () => {
  assert.deepEqual(parseModelSource('tiny:seed=2,context=1024'), {
    kind: 'tiny',
    options: { seed: 2, contextLength: 1024 },
    key: 'seed2-contextLength1024',
  });
  assert.throws(() => parseModelSource('tiny:size=3'), /'size=3'/);
  assert.throws(
    () => parseModelSource('models/nope.gguf', '/srv'),
    /model_source 'models\/nope.gguf' not found \(looked for \/srv\/models\/nope.gguf\)/,
  );
});

test('every model server gets a user_config, so its replica is ready only once its engine is', () => {
  const options = (model_source: string, deployment_config = {}) =>
    llmServerOptions(
      parseOpenAIAppArgs({
        llm_configs: [{ model_loading_config: { model_id: 'm', model_source }, deployment_config }],
      }).llm_configs[0],
    );
  for (const source of [
    'hf://org/repo/m.gguf',
    'https://example.com/m.gguf',
    'tiny:seed=1',
    'models/m.gguf',
  ]) {
    assert.deepEqual(options(source), {
      maxOngoingRequests: 64,
      requestRouterConfig: LLM_REQUEST_ROUTER,
      userConfig: {},
    });
  }
  assert.deepEqual(options('tiny:seed=1', { user_config: { a: 1 } }).userConfig, { a: 1 });
});

test('LLM servers route by prefix cache affinity unless deployment_config says otherwise', () => {
  const options = (deployment_config: Record<string, unknown>) =>
    llmServerOptions(
      parseOpenAIAppArgs({
        llm_configs: [
          { model_loading_config: { model_id: 'm', model_source: 'tiny:seed=1' }, deployment_config },
        ],
      }).llm_configs[0],
    );
  assert.deepEqual(options({}).requestRouterConfig, { requestRouterClass: 'prefix_cache_affinity' });
  assert.deepEqual(
    options({
      request_router_config: {
        request_router_class: 'prefix_cache_affinity',
        request_router_kwargs: { imbalanced_threshold: 2 },
      },
    }).requestRouterConfig,
    { requestRouterClass: 'prefix_cache_affinity', requestRouterKwargs: { imbalancedThreshold: 2 } },
  );
  assert.deepEqual(options({ request_router_config: { request_router_class: 'pow2' } }).requestRouterConfig, {
    requestRouterClass: 'pow2',
  });
});
