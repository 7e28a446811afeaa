import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaylineError } from '../errors.ts';
import { deploymentOptionsSchema, mergeDeploymentConfig } from './deployment-config.ts';
import { codeOptionsToSnake, type DeploymentOptions } from './options.ts';

const where = "deployment 'Model'";

/** Asserts that the options are refused with RL_CONFIG_INVALID and returns the issues. */
function refused(options: unknown): { path: string; message: string }[] {
  try {
    codeOptionsToSnake(options as DeploymentOptions, where);
  } catch (error) {
    assert.ok(error instanceof RaylineError, `expected a RaylineError, got ${String(error)}`);
    assert.equal(error.code, 'RL_CONFIG_INVALID');
    assert.equal(error.statusCode, 400);
    assert.ok(error.message.startsWith(`invalid deployment options for ${where}: `), error.message);
    assert.ok(error.issues && error.issues.length > 0);
    for (const issue of error.issues) assert.ok(error.message.includes(`${issue.path}: ${issue.message}`));
    return [...error.issues];
  }
  assert.fail(`expected ${JSON.stringify(options)} to be refused`);
}

function assertRefusedAt(options: unknown, path: string, fragment: string): void {
  const issues = refused(options);
  assert.equal(issues.length, 1, JSON.stringify(issues));
  assert.equal(issues[0].path, path);
  assert.ok(issues[0].message.includes(fragment), issues[0].message);
}

test('every camelCase option maps to its snake_case config field', () => {
  const snake = codeOptionsToSnake(
    {
      name: 'Model',
      maxOngoingRequests: 8,
      maxQueuedRequests: 100,
      healthCheckPeriodS: 5,
      healthCheckTimeoutS: 15,
      gracefulShutdownWaitLoopS: 1,
      gracefulShutdownTimeoutS: 10,
      maxReplicasPerNode: 2,
      placementGroupStrategy: 'STRICT_PACK',
      rayActorOptions: { numCpus: 2, numGpus: 0.5, memory: 1024 },
      autoscalingConfig: {
        minReplicas: 1,
        initialReplicas: 2,
        maxReplicas: 5,
        targetOngoingRequests: 3,
        metricsIntervalS: 5,
        lookBackPeriodS: 20,
        smoothingFactor: 0.5,
        upscalingFactor: 2,
        downscalingFactor: null,
        upscaleDelayS: 10,
        downscaleDelayS: 300,
        downscaleToZeroDelayS: 900,
      },
    },
    where,
  );
  assert.deepEqual(snake, {
    name: 'Model',
    max_ongoing_requests: 8,
    max_queued_requests: 100,
    health_check_period_s: 5,
    health_check_timeout_s: 15,
    graceful_shutdown_wait_loop_s: 1,
    graceful_shutdown_timeout_s: 10,
    max_replicas_per_node: 2,
    placement_group_strategy: 'STRICT_PACK',
    ray_actor_options: { num_cpus: 2, num_gpus: 0.5, memory: 1024 },
    autoscaling_config: {
      min_replicas: 1,
      initial_replicas: 2,
      max_replicas: 5,
      target_ongoing_requests: 3,
      metrics_interval_s: 5,
      look_back_period_s: 20,
      smoothing_factor: 0.5,
      upscaling_factor: 2,
      downscaling_factor: null,
      upscale_delay_s: 10,
      downscale_delay_s: 300,
      downscale_to_zero_delay_s: 900,
    },
  });
  // The result is a valid config layer.
  assert.equal(deploymentOptionsSchema.safeParse(snake).success, true);
});

test('userConfig, resources and placement group bundles keep their keys as written', () => {
  const snake = codeOptionsToSnake(
    {
      numReplicas: 2,
      userConfig: { modelName: 'bert', nested: { topK: 5, already_snake: true }, list: [{ camelKey: 1 }] },
      rayActorOptions: { numCpus: 1, resources: { myAccelerator: 1, neuron_cores: 2, TPU: 1 } },
      placementGroupBundles: [{ CPU: 1, GPU: 1 }, { customRes: 2 }],
    },
    where,
  );
  assert.deepEqual(snake, {
    num_replicas: 2,
    user_config: { modelName: 'bert', nested: { topK: 5, already_snake: true }, list: [{ camelKey: 1 }] },
    ray_actor_options: { num_cpus: 1, resources: { myAccelerator: 1, neuron_cores: 2, TPU: 1 } },
    placement_group_bundles: [{ CPU: 1, GPU: 1 }, { customRes: 2 }],
  });
});

test('user_config values that are not objects pass through unchanged', () => {
  assert.deepEqual(codeOptionsToSnake({ userConfig: 'plain' }, where), { user_config: 'plain' });
  assert.deepEqual(codeOptionsToSnake({ userConfig: [1, 2] }, where), { user_config: [1, 2] });
  assert.deepEqual(codeOptionsToSnake({ userConfig: null }, where), { user_config: null });
});

test('numReplicas "auto" and null option values are kept', () => {
  assert.deepEqual(codeOptionsToSnake({ numReplicas: 'auto', autoscalingConfig: null }, where), {
    num_replicas: 'auto',
    autoscaling_config: null,
  });
});

test('empty options are valid', () => {
  assert.deepEqual(codeOptionsToSnake({}, where), {});
});

test('invalid top-level options name the camelCase field', () => {
  assertRefusedAt({ maxOngoingRequests: 0 }, 'maxOngoingRequests', '>0');
  assertRefusedAt({ maxQueuedRequests: 0 }, 'maxQueuedRequests', 'must be -1 (no limit)');
  assertRefusedAt({ numReplicas: -1 }, 'numReplicas', '>=0');
  assertRefusedAt({ healthCheckPeriodS: 0 }, 'healthCheckPeriodS', '>0');
  assertRefusedAt({ gracefulShutdownTimeoutS: -1 }, 'gracefulShutdownTimeoutS', '>=0');
  assertRefusedAt({ placementGroupStrategy: 'PACKED' }, 'placementGroupStrategy', '"PACK"');
  assertRefusedAt({ maxOngoingRequests: '5' }, 'maxOngoingRequests', 'expected number, received string');
  assertRefusedAt({ name: '' }, 'name', '>=1');
});

test('an unknown option (a typo) is refused under the name the user wrote', () => {
  assertRefusedAt({ maxOngoingRequest: 3 }, 'maxOngoingRequest', 'unknown field');
  assertRefusedAt({ rayActorOptions: { numGpu: 1 } }, 'rayActorOptions.numGpu', 'unknown field');
});

test('invalid nested options name the camelCase path', () => {
  assertRefusedAt({ rayActorOptions: { numGpus: -1 } }, 'rayActorOptions.numGpus', '>=0');
  assertRefusedAt(
    { autoscalingConfig: { minReplicas: 5, maxReplicas: 2 } },
    'autoscalingConfig.minReplicas',
    'min_replicas (5) must not exceed max_replicas (2)',
  );
  assertRefusedAt(
    { autoscalingConfig: { minReplicas: 1, maxReplicas: 3, initialReplicas: 4 } },
    'autoscalingConfig.initialReplicas',
    'must lie within',
  );
  assertRefusedAt(
    { autoscalingConfig: { targetOngoingRequests: 0 } },
    'autoscalingConfig.targetOngoingRequests',
    '>0',
  );
  assertRefusedAt({ placementGroupBundles: [] }, 'placementGroupBundles', '>=1');
});

test('a path below resources or bundles keeps the key as written', () => {
  assertRefusedAt(
    { rayActorOptions: { resources: { my_accel: -1 } } },
    'rayActorOptions.resources.my_accel',
    '>=0',
  );
  assertRefusedAt(
    { placementGroupBundles: [{ CPU: 1 }, { neuron_cores: -2 }] },
    'placementGroupBundles[1].neuron_cores',
    '>=0',
  );
});

test('numReplicas together with autoscalingConfig is refused', () => {
  assertRefusedAt(
    { numReplicas: 2, autoscalingConfig: { maxReplicas: 4 } },
    'numReplicas',
    'autoscaling_config',
  );
});

test('several problems are all reported', () => {
  const issues = refused({ maxOngoingRequests: 0, rayActorOptions: { numCpus: -1 }, typo: 1 });
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    'maxOngoingRequests',
    'rayActorOptions.numCpus',
    'typo',
  ]);
});

test('code options merged under config options: the config wins', () => {
  const code = deploymentOptionsSchema.parse(
    codeOptionsToSnake({ maxOngoingRequests: 3, rayActorOptions: { numCpus: 2 } }, where),
  );
  const merged = mergeDeploymentConfig(code, deploymentOptionsSchema.parse({ max_ongoing_requests: 7 }));
  assert.equal(merged.max_ongoing_requests, 7);
  assert.deepEqual(merged.ray_actor_options, { num_cpus: 2 });
});
