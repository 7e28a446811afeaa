import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deploymentOptionsSchema, mergeDeploymentConfig } from './deployment-config.ts';
import type { ValidationIssue } from './issues.ts';
import { parseServeConfig, type ServeConfig } from './serve-config.ts';

type Json = Record<string, unknown>;

const app = (fields: Json = {}): Json => ({
  name: 'app1',
  route_prefix: '/app1',
  import_path: 'app.ts:app',
  ...fields,
});
const withDeployment = (deployment: Json): Json => ({
  applications: [app({ deployments: [{ name: 'Model', ...deployment }] })],
});

function issuesOf(input: unknown): ValidationIssue[] {
  const result = parseServeConfig(input);
  assert.equal(result.ok, false, `expected the config to be rejected: ${JSON.stringify(input)}`);
  return result.ok ? [] : result.issues;
}

/** Exactly one issue, at `path`, whose message contains `fragment`. */
function assertSingleIssue(input: unknown, path: string, fragment: string | RegExp): void {
  const issues = issuesOf(input);
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues)}`);
  assert.equal(issues[0].path, path);
  if (typeof fragment === 'string') assert.ok(issues[0].message.includes(fragment), issues[0].message);
  else assert.match(issues[0].message, fragment);
}

function valid(input: unknown): ServeConfig {
  const result = parseServeConfig(input);
  if (!result.ok) assert.fail(`expected a valid config, got ${JSON.stringify(result.issues)}`);
  return result.value;
}

const d0 = 'applications[0].deployments[0]';

test('import_path must be module:export', () => {
  assertSingleIssue(
    { applications: [app({ import_path: 'app' })] },
    'applications[0].import_path',
    'module:exportName',
  );
  assertSingleIssue(
    { applications: [app({ import_path: 'app.ts:a:b' })] },
    'applications[0].import_path',
    'module:exportName',
  );
  assertSingleIssue(
    { applications: [app({ import_path: 'app.ts:1st' })] },
    'applications[0].import_path',
    'module:exportName',
  );
  assertSingleIssue({ applications: [{ name: 'x' }] }, 'applications[0].import_path', 'expected string');
});

test('route_prefix needs a leading slash', () => {
  assertSingleIssue(
    { applications: [app({ route_prefix: 'api' })] },
    'applications[0].route_prefix',
    'start with "/"',
  );
});

test('route_prefix must not end with a slash, except the root', () => {
  assertSingleIssue(
    { applications: [app({ route_prefix: '/api/' })] },
    'applications[0].route_prefix',
    'must not end with "/"',
  );
  assert.equal(valid({ applications: [app({ route_prefix: '/' })] }).applications[0].route_prefix, '/');
});

test('route_prefix must not contain a path parameter', () => {
  assertSingleIssue(
    { applications: [app({ route_prefix: '/items/{id}' })] },
    'applications[0].route_prefix',
    'must not contain "{"',
  );
});

test('application names must be unique', () => {
  assertSingleIssue(
    { applications: [app({ route_prefix: '/a' }), app({ route_prefix: '/b' })] },
    'applications[1].name',
    "duplicate application name 'app1'",
  );
  // Two unnamed applications both default to 'default'.
  assertSingleIssue(
    {
      applications: [
        { import_path: 'a.ts:app', route_prefix: '/a' },
        { import_path: 'b.ts:app', route_prefix: '/b' },
      ],
    },
    'applications[1].name',
    "duplicate application name 'default'",
  );
});

test('route prefixes must be unique; null (no HTTP route) may repeat', () => {
  assertSingleIssue(
    { applications: [app({ name: 'a' }), app({ name: 'b' }), app({ name: 'c', route_prefix: '/other' })] },
    'applications[1].route_prefix',
    "route_prefix '/app1' is already used by applications[0]",
  );
  const config = valid({
    applications: [app({ name: 'a', route_prefix: null }), app({ name: 'b', route_prefix: null })],
  });
  assert.deepEqual(
    config.applications.map((a) => a.route_prefix),
    [null, null],
  );
});

test('an unknown top-level field (a typo) is rejected, not ignored', () => {
  assertSingleIssue({ aplications: [app()] }, 'aplications', 'unknown field');
  assertSingleIssue({ http_options: { prot: 9000 } }, 'http_options.prot', 'unknown field');
  assertSingleIssue({ applications: [app({ route: '/x' })] }, 'applications[0].route', 'unknown field');
});

test('an unknown deployment field (a typo) is rejected, not ignored', () => {
  assertSingleIssue(withDeployment({ num_replica: 2 }), `${d0}.num_replica`, 'unknown field');
  assertSingleIssue(
    withDeployment({ ray_actor_options: { num_gpu: 1 } }),
    `${d0}.ray_actor_options.num_gpu`,
    'unknown field',
  );
  assertSingleIssue(
    withDeployment({ autoscaling_config: { max_replica: 3 } }),
    `${d0}.autoscaling_config.max_replica`,
    'unknown field',
  );
});

test('num_replicas must be a non-negative integer or "auto"', () => {
  assertSingleIssue(withDeployment({ num_replicas: -1 }), `${d0}.num_replicas`, '>=0');
  assertSingleIssue(withDeployment({ num_replicas: 1.5 }), `${d0}.num_replicas`, 'Invalid input');
  assertSingleIssue(withDeployment({ num_replicas: 'many' }), `${d0}.num_replicas`, 'Invalid input');
});

test('max_ongoing_requests must be positive', () => {
  assertSingleIssue(withDeployment({ max_ongoing_requests: 0 }), `${d0}.max_ongoing_requests`, '>0');
});

test('max_queued_requests must be -1 or positive', () => {
  assertSingleIssue(
    withDeployment({ max_queued_requests: 0 }),
    `${d0}.max_queued_requests`,
    'must be -1 (no limit)',
  );
  assertSingleIssue(
    withDeployment({ max_queued_requests: -2 }),
    `${d0}.max_queued_requests`,
    'must be -1 (no limit)',
  );
  assert.equal(
    valid(withDeployment({ max_queued_requests: -1 })).applications[0].deployments[0].max_queued_requests,
    -1,
  );
});

test('autoscaling: min_replicas must not exceed max_replicas', () => {
  assertSingleIssue(
    withDeployment({ autoscaling_config: { min_replicas: 5, max_replicas: 2 } }),
    `${d0}.autoscaling_config.min_replicas`,
    'min_replicas (5) must not exceed max_replicas (2)',
  );
  // max_replicas defaults to 1 (Ray), so a lone min_replicas of 2 is out of bounds too.
  assertSingleIssue(
    withDeployment({ autoscaling_config: { min_replicas: 2 } }),
    `${d0}.autoscaling_config.min_replicas`,
    'min_replicas (2) must not exceed max_replicas (1)',
  );
});

test('autoscaling: a bad field is reported once, at its path', () => {
  assertSingleIssue(
    withDeployment({ autoscaling_config: { target_ongoing_requests: 0 } }),
    `${d0}.autoscaling_config.target_ongoing_requests`,
    '>0',
  );
  assertSingleIssue(
    withDeployment({ num_replicas: 'auto', autoscaling_config: { max_replicas: 0 } }),
    `${d0}.autoscaling_config.max_replicas`,
    '>0',
  );
});

test('autoscaling: with num_replicas "auto", bounds are checked against max_replicas 100', () => {
  const config = valid(withDeployment({ num_replicas: 'auto', autoscaling_config: { min_replicas: 2 } }));
  // The config keeps what was written; defaults are applied when merging.
  assert.deepEqual(config.applications[0].deployments[0].autoscaling_config, { min_replicas: 2 });
  assertSingleIssue(
    withDeployment({ num_replicas: 'auto', autoscaling_config: { min_replicas: 101 } }),
    `${d0}.autoscaling_config.min_replicas`,
    'min_replicas (101) must not exceed max_replicas (100)',
  );
});

test('autoscaling: initial_replicas must lie within [min, max]', () => {
  assertSingleIssue(
    withDeployment({ autoscaling_config: { min_replicas: 1, max_replicas: 4, initial_replicas: 9 } }),
    `${d0}.autoscaling_config.initial_replicas`,
    'initial_replicas (9) must lie within [min_replicas, max_replicas] = [1, 4]',
  );
  assertSingleIssue(
    withDeployment({ autoscaling_config: { min_replicas: 2, max_replicas: 4, initial_replicas: 1 } }),
    `${d0}.autoscaling_config.initial_replicas`,
    '= [2, 4]',
  );
});

test('num_replicas together with autoscaling_config is rejected unless num_replicas is "auto" (as in Ray)', () => {
  assertSingleIssue(
    withDeployment({ num_replicas: 2, autoscaling_config: { min_replicas: 1, max_replicas: 4 } }),
    `${d0}.num_replicas`,
    'cannot be set together with autoscaling_config',
  );
  const config = valid(
    withDeployment({ num_replicas: 'auto', autoscaling_config: { min_replicas: 1, max_replicas: 4 } }),
  );
  assert.equal(config.applications[0].deployments[0].num_replicas, 'auto');
  // A number with an explicit null autoscaling_config is fine.
  valid(withDeployment({ num_replicas: 2, autoscaling_config: null }));
});

test('runtime_env.pip is refused with a message saying it is unsupported', () => {
  const issues = issuesOf({ applications: [app({ runtime_env: { pip: ['torch'], conda: 'env' } })] });
  assert.deepEqual(
    issues.map((i) => i.path),
    ['applications[0].runtime_env.pip', 'applications[0].runtime_env.conda'],
  );
  assert.match(issues[0].message, /runtime_env\.pip is not supported by Rayline/);
  assert.match(issues[0].message, /supported: env_vars, working_dir/);
  const config = valid({
    applications: [app({ runtime_env: { env_vars: { A: '1' }, working_dir: '/srv' } })],
  });
  assert.deepEqual(config.applications[0].runtime_env, { env_vars: { A: '1' }, working_dir: '/srv' });
});

test("proxy_location must be one of Ray's values", () => {
  assertSingleIssue({ proxy_location: 'Everywhere' }, 'proxy_location', '"EveryNode"|"HeadOnly"|"Disabled"');
  assert.equal(valid({ proxy_location: 'HeadOnly' }).proxy_location, 'HeadOnly');
});

test('http_options.port must be a TCP port', () => {
  assertSingleIssue({ http_options: { port: 70000 } }, 'http_options.port', '<=65535');
  assertSingleIssue({ http_options: { port: -1 } }, 'http_options.port', '>=0');
  assertSingleIssue({ http_options: { port: 80.5 } }, 'http_options.port', 'expected int');
});

test('deployment names within one application must be unique', () => {
  assertSingleIssue(
    { applications: [app({ deployments: [{ name: 'A' }, { name: 'B' }, { name: 'A', num_replicas: 2 }] })] },
    'applications[0].deployments[2].name',
    "duplicate deployment name 'A'",
  );
  // The same deployment name in two applications is fine.
  valid({
    applications: [
      app({ name: 'x', route_prefix: '/x', deployments: [{ name: 'A' }] }),
      app({ name: 'y', route_prefix: '/y', deployments: [{ name: 'A' }] }),
    ],
  });
});

test('a deployment override needs a name', () => {
  assertSingleIssue(withDeployment({ name: undefined, num_replicas: 1 }), `${d0}.name`, 'expected string');
});

test('wrong types are reported at their path', () => {
  assertSingleIssue(
    withDeployment({ max_ongoing_requests: '5' }),
    `${d0}.max_ongoing_requests`,
    'expected number, received string',
  );
  assertSingleIssue(
    { http_options: { port: '8000' } },
    'http_options.port',
    'expected number, received string',
  );
  assertSingleIssue({ applications: {} }, 'applications', 'expected array');
  assertSingleIssue(
    withDeployment({ ray_actor_options: { num_gpus: 'one' } }),
    `${d0}.ray_actor_options.num_gpus`,
    'expected number, received string',
  );
});

test('every problem is reported, not just the first', () => {
  const issues = issuesOf({
    proxy_location: 'Nowhere',
    applications: [app({ route_prefix: 'x', deployments: [{ name: 'M', max_ongoing_requests: 0 }] })],
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    'applications[0].deployments[0].max_ongoing_requests',
    'applications[0].route_prefix',
    'proxy_location',
  ]);
});

test("an empty config is valid and gets Ray's defaults", () => {
  const config = valid({});
  assert.equal(config.proxy_location, 'EveryNode');
  assert.deepEqual(config.http_options, {
    host: '0.0.0.0',
    port: 8000,
    request_timeout_s: null,
    keep_alive_timeout_s: 90,
    body_limit_bytes: 32 * 1024 * 1024,
    buffered_body_limit_bytes: 256 * 1024 * 1024,
    root_path: '',
  });
  assert.deepEqual(config.logging_config, { encoding: 'TEXT', log_level: 'INFO', enable_access_log: true });
  assert.deepEqual(config.applications, []);
});

test('an application gets default name, route_prefix, args, runtime_env and deployments', () => {
  const config = valid({
    applications: [{ import_path: 'examples/hello/app.ts:app' }],
    http_options: { port: 9000 },
  });
  assert.deepEqual(config.applications, [
    {
      name: 'default',
      route_prefix: '/',
      import_path: 'examples/hello/app.ts:app',
      args: {},
      runtime_env: {},
      deployments: [],
    },
  ]);
  assert.equal(config.http_options.port, 9000);
  assert.equal(config.http_options.keep_alive_timeout_s, 90);
  assert.equal(config.http_options.host, '0.0.0.0');
});

// The RayService serveConfigV2 from the project's brief, as parsed from its YAML.
const seedConfig = (): Json => ({
  applications: [
    {
      name: 'llm-app',
      import_path: 'serve_app:app',
      runtime_env: { pip: ['vllm>=0.6.0', 'transformers'] },
      deployments: [
        {
          name: 'LLMDeployment',
          num_replicas: 2,
          ray_actor_options: { num_gpus: 1 },
          autoscaling_config: { min_replicas: 1, max_replicas: 4 },
        },
      ],
    },
  ],
});

test('the seed serveConfigV2 as written: pip and num_replicas+autoscaling_config are both refused', () => {
  const issues = issuesOf(seedConfig());
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    'applications[0].deployments[0].num_replicas',
    'applications[0].runtime_env.pip',
  ]);
});

test('the seed serveConfigV2 minus pip is refused as Ray refuses it (num_replicas with autoscaling_config)', () => {
  const seed = seedConfig();
  const application = (seed.applications as Json[])[0];
  delete application.runtime_env;
  assertSingleIssue(seed, `${d0}.num_replicas`, 'cannot be set together with autoscaling_config');
});

test('the seed serveConfigV2 minus pip and autoscaling_config is valid', () => {
  const seed = seedConfig();
  const application = (seed.applications as Json[])[0];
  delete application.runtime_env;
  delete (application.deployments as Json[])[0].autoscaling_config;
  const config = valid(seed);
  assert.deepEqual(config.applications, [
    {
      name: 'llm-app',
      route_prefix: '/',
      import_path: 'serve_app:app',
      args: {},
      runtime_env: {},
      deployments: [{ name: 'LLMDeployment', num_replicas: 2, ray_actor_options: { num_gpus: 1 } }],
    },
  ]);
  const merged = mergeDeploymentConfig(
    {},
    deploymentOptionsSchema.parse(config.applications[0].deployments[0]),
  );
  assert.equal(merged.num_replicas, 2);
  assert.equal(merged.autoscaling_config, null);
  assert.equal(merged.ray_actor_options.num_gpus, 1);
  // Ray's replica default of one CPU still applies when num_cpus is not written.
  assert.equal(merged.ray_actor_options.num_cpus ?? 1, 1);
});

test('the seed serveConfigV2 with num_replicas "auto" keeps its autoscaling bounds', () => {
  const seed = seedConfig();
  const application = (seed.applications as Json[])[0];
  delete application.runtime_env;
  (application.deployments as Json[])[0].num_replicas = 'auto';
  const config = valid(seed);
  const merged = mergeDeploymentConfig(
    {},
    deploymentOptionsSchema.parse(config.applications[0].deployments[0]),
  );
  assert.equal(merged.autoscaling_config?.min_replicas, 1);
  assert.equal(merged.autoscaling_config?.max_replicas, 4);
  assert.equal(merged.autoscaling_config?.target_ongoing_requests, 2);
  assert.equal(merged.num_replicas, 1);
});
