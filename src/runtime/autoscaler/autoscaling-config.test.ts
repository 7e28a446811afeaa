/** The `--autoscaling-config` file: defaults, the errors that name a field and the file, and its ClusterShape. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RaylineError } from '../../errors.ts';
import {
  clusterShapeOf,
  initialReplicas,
  loadAutoscalingConfig,
  parseAutoscalingConfig,
} from './autoscaling-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'rayline-autoscaling-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The RaylineError a call throws. */
function thrown(fn: () => unknown): RaylineError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof RaylineError, String(error));
    return error;
  }
  assert.fail('expected an error');
}

test('a minimal file gets the defaults and maps to the planner shape', () => {
  const file = writeFile(
    'cluster.yaml',
    `
workerGroupSpecs:
  - groupName: gpu
    maxReplicas: 4
    resources: { CPU: 8, GPU: 1, memory: 32Gi, TPU: 2 }
    labels: { zone: a }
  - groupName: cpu
    minReplicas: 1
    maxReplicas: 3
    replicas: 2
    idleTimeoutSeconds: 10
    resources: { CPU: 4 }
`,
  );
  const config = loadAutoscalingConfig(file);
  assert.deepEqual(config.autoscalerOptions, { idleTimeoutSeconds: 60, upscalingMode: 'Default' });
  assert.equal(config.workerGroupSpecs[0].minReplicas, 0);
  assert.deepEqual(config.workerGroupSpecs[0].labels, { zone: 'a' });
  assert.deepEqual(config.workerGroupSpecs[1].labels, {});
  assert.equal(initialReplicas(config.workerGroupSpecs[0]), 0);
  assert.equal(initialReplicas(config.workerGroupSpecs[1]), 2);
  assert.deepEqual(clusterShapeOf(config), {
    groups: [
      {
        name: 'gpu',
        resourcesPerWorker: { CPU: 8, GPU: 1, memory: 32 * 2 ** 30, TPU: 2 },
        minWorkers: 0,
        maxWorkers: 4,
      },
      { name: 'cpu', resourcesPerWorker: { CPU: 4 }, minWorkers: 1, maxWorkers: 3, idleTimeoutS: 10 },
    ],
    idleTimeoutS: 60,
    upscalingMode: 'Default',
  });
});

test('autoscalerOptions carry over to the shape', () => {
  const config = parseAutoscalingConfig(
    {
      autoscalerOptions: { idleTimeoutSeconds: 5, upscalingMode: 'Conservative' },
      workerGroupSpecs: [],
    },
    "'inline'",
  );
  assert.deepEqual(clusterShapeOf(config), { groups: [], idleTimeoutS: 5, upscalingMode: 'Conservative' });
});

test('errors name the file and the field path', () => {
  const file = writeFile(
    'bad.yaml',
    `
workerGroupSpecs:
  - groupName: small
    maxReplicas: 2
  - groupName: big
    minReplicas: 3
    maxReplicas: 1
`,
  );
  const error = thrown(() => loadAutoscalingConfig(file));
  assert.equal(error.code, 'RL_CONFIG_INVALID');
  assert.ok(error.message.includes(`'${file}'`), error.message);
  assert.deepEqual(error.issues, [
    { path: 'workerGroupSpecs[1].maxReplicas', message: 'maxReplicas (1) is less than minReplicas (3)' },
  ]);
  assert.match(
    error.message,
    /workerGroupSpecs\[1\]\.maxReplicas: maxReplicas \(1\) is less than minReplicas \(3\)/,
  );
});

const issuePaths = (document: unknown) =>
  thrown(() => parseAutoscalingConfig(document, "'x.yaml'")).issues?.map((i) => i.path);

test('each rule reports its own field', () => {
  const group = { groupName: 'g', maxReplicas: 2 };
  assert.deepEqual(issuePaths({}), ['workerGroupSpecs']);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ groupName: 'g' }] }), [
    'workerGroupSpecs[0].maxReplicas',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [group, { ...group }] }), [
    'workerGroupSpecs[1].groupName',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ ...group, groupName: 'GPU_group' }] }), [
    'workerGroupSpecs[0].groupName',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ ...group, replicas: 3 }] }), [
    'workerGroupSpecs[0].replicas',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ ...group, resources: { GPU: -1 } }] }), [
    'workerGroupSpecs[0].resources.GPU',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ ...group, resources: { memory: 'lots' } }] }), [
    'workerGroupSpecs[0].resources.memory',
  ]);
  assert.deepEqual(issuePaths({ workerGroupSpecs: [{ ...group, maxReplica: 3 }] }), [
    'workerGroupSpecs[0].maxReplica',
  ]);
  assert.deepEqual(issuePaths({ autoscalerOptions: { upscalingMode: 'Fast' }, workerGroupSpecs: [] }), [
    'autoscalerOptions.upscalingMode',
  ]);
});

test('an unreadable or non-YAML file is a config error naming it', () => {
  const missing = join(dir, 'missing.yaml');
  const notFound = thrown(() => loadAutoscalingConfig(missing));
  assert.equal(notFound.code, 'RL_CONFIG_INVALID');
  assert.ok(notFound.message.includes(missing), notFound.message);
  const file = writeFile('broken.yaml', 'workerGroupSpecs: [\n');
  const broken = thrown(() => loadAutoscalingConfig(file));
  assert.equal(broken.code, 'RL_CONFIG_INVALID');
  assert.match(broken.message, /is not valid YAML/);
  assert.ok(broken.message.includes(file), broken.message);
});
