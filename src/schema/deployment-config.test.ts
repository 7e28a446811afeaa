import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  autoscalingConfigSchema,
  type DeploymentOptionsInput,
  deploymentDefaults,
  deploymentOptionsSchema,
  mergeDeploymentConfig,
} from './deployment-config.ts';

/** Parses a layer the way the controller does before merging. */
const layer = (options: DeploymentOptionsInput) => deploymentOptionsSchema.parse(options);

const autoscalingFieldDefaults = {
  target_ongoing_requests: 2,
  metrics_interval_s: 10,
  look_back_period_s: 30,
  smoothing_factor: 1,
  upscale_delay_s: 30,
  downscale_delay_s: 600,
};

test("defaults are Ray Serve's", () => {
  assert.deepEqual(mergeDeploymentConfig({}), {
    num_replicas: 1,
    max_ongoing_requests: 5,
    max_queued_requests: -1,
    user_config: null,
    autoscaling_config: null,
    ray_actor_options: { num_cpus: 1 },
    placement_group_bundles: null,
    placement_group_strategy: null,
    max_replicas_per_node: null,
    health_check_period_s: 10,
    health_check_timeout_s: 30,
    graceful_shutdown_wait_loop_s: 2,
    graceful_shutdown_timeout_s: 20,
    request_router_config: { request_router_class: 'pow2' },
  });
});

test('merging does not mutate its inputs', () => {
  const code = layer({
    num_replicas: 'auto',
    ray_actor_options: { num_cpus: 2 },
    autoscaling_config: { min_replicas: 2 },
  });
  const config = layer({ max_ongoing_requests: 9, ray_actor_options: { num_gpus: 1 } });
  const codeCopy = structuredClone(code);
  const configCopy = structuredClone(config);
  mergeDeploymentConfig(code, config);
  assert.deepEqual(code, codeCopy);
  assert.deepEqual(config, configCopy);
});

test('a merged config does not share objects with the defaults', () => {
  const merged = mergeDeploymentConfig({});
  merged.ray_actor_options.num_cpus = 99;
  merged.num_replicas = 42;
  assert.deepEqual(deploymentDefaults.ray_actor_options, { num_cpus: 1 });
  assert.equal(deploymentDefaults.num_replicas, 1);
  assert.deepEqual(mergeDeploymentConfig({}).ray_actor_options, { num_cpus: 1 });
});

test('precedence per field: config beats code beats defaults', () => {
  const code = layer({
    num_replicas: 3,
    max_ongoing_requests: 10,
    health_check_period_s: 4,
    user_config: { threshold: 0.5 },
  });
  const config = layer({
    max_ongoing_requests: 20,
    graceful_shutdown_timeout_s: 0,
    user_config: { threshold: 0.9 },
  });
  const merged = mergeDeploymentConfig(code, config);
  assert.equal(merged.max_ongoing_requests, 20, 'set in both: config wins');
  assert.equal(merged.num_replicas, 3, 'set in code only: code wins over the default');
  assert.equal(merged.health_check_period_s, 4, 'set in code only');
  assert.equal(merged.graceful_shutdown_timeout_s, 0, 'set in config only, even to a falsy value');
  assert.deepEqual(merged.user_config, { threshold: 0.9 });
  assert.equal(merged.max_queued_requests, -1, 'set nowhere: the default');
  assert.equal(merged.health_check_timeout_s, 30, 'set nowhere: the default');
});

test('name and logging_config are not part of the merged deployment config', () => {
  const merged = mergeDeploymentConfig(
    layer({ name: 'Model' }),
    layer({ logging_config: { log_level: 'DEBUG' } }),
  );
  assert.equal('name' in merged, false);
  assert.equal('logging_config' in merged, false);
});

test('nested option objects are replaced whole, not merged field by field', () => {
  const code = layer({
    ray_actor_options: { num_cpus: 2, memory: 1024, resources: { accel: 1 } },
    autoscaling_config: { min_replicas: 2, max_replicas: 8, target_ongoing_requests: 7 },
  });
  const config = layer({
    ray_actor_options: { num_gpus: 1 },
    autoscaling_config: { max_replicas: 3 },
  });
  const merged = mergeDeploymentConfig(code, config);
  assert.equal(merged.ray_actor_options.num_gpus, 1);
  assert.equal(merged.ray_actor_options.memory, undefined, 'memory from code does not survive');
  assert.equal(merged.ray_actor_options.resources, undefined, 'resources from code do not survive');
  assert.notEqual(merged.ray_actor_options.num_cpus, 2, 'num_cpus from code does not survive');
  assert.deepEqual(merged.autoscaling_config, {
    ...autoscalingFieldDefaults,
    min_replicas: 1,
    max_replicas: 3,
  });
  assert.equal(merged.num_replicas, 1);
});

test('a nested object from code is kept when the config does not set it', () => {
  const merged = mergeDeploymentConfig(
    layer({ ray_actor_options: { num_cpus: 0.5, num_gpus: 0.25 } }),
    layer({}),
  );
  assert.deepEqual(merged.ray_actor_options, { num_cpus: 0.5, num_gpus: 0.25 });
});

test('num_replicas "auto" means autoscaling from 1 to 100 replicas', () => {
  const merged = mergeDeploymentConfig(layer({ num_replicas: 'auto' }));
  assert.deepEqual(merged.autoscaling_config, {
    ...autoscalingFieldDefaults,
    min_replicas: 1,
    max_replicas: 100,
  });
  assert.equal(merged.num_replicas, 1);
});

test('num_replicas "auto" in the config turns on autoscaling over a number in code', () => {
  const merged = mergeDeploymentConfig(layer({ num_replicas: 3 }), layer({ num_replicas: 'auto' }));
  assert.equal(merged.autoscaling_config?.min_replicas, 1);
  assert.equal(merged.autoscaling_config?.max_replicas, 100);
  assert.equal(merged.num_replicas, 1);
});

test('num_replicas "auto": the fields written in autoscaling_config override its defaults, the rest keep them', () => {
  const partial = mergeDeploymentConfig(
    layer({ num_replicas: 'auto', autoscaling_config: { target_ongoing_requests: 5 } }),
  );
  assert.deepEqual(partial.autoscaling_config, {
    ...autoscalingFieldDefaults,
    target_ongoing_requests: 5,
    min_replicas: 1,
    max_replicas: 100,
  });
  // min_replicas 2 is valid under "auto" because max_replicas is then 100, not 1.
  const raised = mergeDeploymentConfig(
    layer({ num_replicas: 'auto', autoscaling_config: { min_replicas: 2 } }),
  );
  assert.equal(raised.autoscaling_config?.min_replicas, 2);
  assert.equal(raised.autoscaling_config?.max_replicas, 100);
  assert.equal(raised.num_replicas, 2);
  const bounded = mergeDeploymentConfig(
    layer({ num_replicas: 'auto' }),
    layer({ autoscaling_config: { min_replicas: 2, max_replicas: 6 } }),
  );
  assert.equal(bounded.autoscaling_config?.min_replicas, 2);
  assert.equal(bounded.autoscaling_config?.max_replicas, 6);
  assert.equal(bounded.num_replicas, 2);
});

test('without "auto", autoscaling_config fields default to Ray\'s AutoscalingConfig defaults (max_replicas 1)', () => {
  const merged = mergeDeploymentConfig(layer({ autoscaling_config: { min_replicas: 0 } }));
  assert.deepEqual(merged.autoscaling_config, {
    ...autoscalingFieldDefaults,
    min_replicas: 0,
    max_replicas: 1,
  });
  assert.equal(merged.num_replicas, 0);
});

test('autoscaling: num_replicas starts at initial_replicas, else min_replicas', () => {
  const withInitial = mergeDeploymentConfig(
    layer({ autoscaling_config: { min_replicas: 1, initial_replicas: 3, max_replicas: 5 } }),
  );
  assert.equal(withInitial.num_replicas, 3);
  assert.equal(withInitial.autoscaling_config?.initial_replicas, 3);
  const withoutInitial = mergeDeploymentConfig(
    layer({ autoscaling_config: { min_replicas: 2, max_replicas: 5 } }),
  );
  assert.equal(withoutInitial.num_replicas, 2);
  const nullInitial = mergeDeploymentConfig(
    layer({ autoscaling_config: { min_replicas: 2, initial_replicas: null, max_replicas: 5 } }),
  );
  assert.equal(nullInitial.num_replicas, 2);
  const auto = mergeDeploymentConfig(
    layer({ num_replicas: 'auto', autoscaling_config: { initial_replicas: 7 } }),
  );
  assert.equal(auto.num_replicas, 7);
});

test('a number in a higher layer turns off autoscaling from a lower layer, and the reverse', () => {
  const numberOverAutoscaling = mergeDeploymentConfig(
    layer({ autoscaling_config: { min_replicas: 2, max_replicas: 5 } }),
    layer({ num_replicas: 4 }),
  );
  assert.equal(numberOverAutoscaling.autoscaling_config, null);
  assert.equal(numberOverAutoscaling.num_replicas, 4);

  const numberOverAuto = mergeDeploymentConfig(layer({ num_replicas: 'auto' }), layer({ num_replicas: 4 }));
  assert.equal(numberOverAuto.autoscaling_config, null);
  assert.equal(numberOverAuto.num_replicas, 4);

  const autoscalingOverNumber = mergeDeploymentConfig(
    layer({ num_replicas: 4 }),
    layer({ autoscaling_config: { min_replicas: 2, max_replicas: 5 } }),
  );
  assert.equal(autoscalingOverNumber.autoscaling_config?.max_replicas, 5);
  assert.equal(autoscalingOverNumber.num_replicas, 2);

  const nullOverAutoscaling = mergeDeploymentConfig(
    layer({ autoscaling_config: { min_replicas: 2, max_replicas: 5 } }),
    layer({ autoscaling_config: null }),
  );
  assert.equal(nullOverAutoscaling.autoscaling_config, null);
  assert.equal(nullOverAutoscaling.num_replicas, 1);
});

test('option validation: one layer may not set both a number and autoscaling_config', () => {
  const result = deploymentOptionsSchema.safeParse({
    num_replicas: 2,
    autoscaling_config: { max_replicas: 3 },
  });
  assert.equal(result.success, false);
  assert.deepEqual(
    result.error?.issues.map((i) => i.path),
    [['num_replicas']],
  );
});

test('option validation: "auto" bounds are checked with the auto defaults', () => {
  assert.equal(
    deploymentOptionsSchema.safeParse({ num_replicas: 'auto', autoscaling_config: { min_replicas: 101 } })
      .success,
    false,
  );
  const result = deploymentOptionsSchema.safeParse({ autoscaling_config: { min_replicas: 2 } });
  assert.deepEqual(
    result.error?.issues.map((i) => [i.path, i.message]),
    [[['autoscaling_config', 'min_replicas'], 'min_replicas (2) must not exceed max_replicas (1)']],
  );
});

test("autoscalingConfigSchema fills Ray's AutoscalingConfig defaults", () => {
  assert.deepEqual(autoscalingConfigSchema.parse({}), {
    ...autoscalingFieldDefaults,
    min_replicas: 1,
    max_replicas: 1,
  });
});

test('request_router_config: Rayline or Ray router names, PrefixCacheAffinityRouter kwargs only with it', () => {
  for (const cls of [
    'pow2',
    'prefix_cache_affinity',
    'ray.serve.llm.request_router.PrefixCacheAffinityRouter',
    'ray.serve._private.request_router:PowerOfTwoChoicesRequestRouter',
  ]) {
    assert.ok(
      deploymentOptionsSchema.safeParse({ request_router_config: { request_router_class: cls } }).success,
    );
  }
  const issues = (request_router_config: unknown) =>
    deploymentOptionsSchema.safeParse({ request_router_config }).error?.issues.map((i) => i.path.join('.'));
  assert.deepEqual(issues({ request_router_class: 'round_robin' }), [
    'request_router_config.request_router_class',
  ]);
  assert.deepEqual(issues({ request_router_kwargs: { imbalanced_threshold: 2 } }), [
    'request_router_config.request_router_kwargs',
  ]);
  assert.deepEqual(
    issues({
      request_router_class: 'prefix_cache_affinity',
      request_router_kwargs: { match_rate_threshold: 2 },
    }),
    ['request_router_config.request_router_kwargs.match_rate_threshold'],
  );
  // Replaced whole: the config's router drops the code's kwargs.
  const merged = mergeDeploymentConfig(
    layer({
      request_router_config: {
        request_router_class: 'prefix_cache_affinity',
        request_router_kwargs: { imbalanced_threshold: 3 },
      },
    }),
    layer({ request_router_config: { request_router_class: 'pow2' } }),
  );
  assert.deepEqual(merged.request_router_config, { request_router_class: 'pow2' });
});
