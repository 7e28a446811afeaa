/**
 * The autoscaling feedback loop end to end: replicas a head cannot place become demand, the head's
 * cluster autoscaler writes worker-group replicas into its RayCluster, the operator creates the
 * pods, workers named after them join and run the replicas; once idle, the autoscaler names them in
 * workersToDelete, the operator deletes exactly those pods, and the list is cleared.
 * A real kube-apiserver and operator; no kubelet, so the test starts a worker node per pod itself.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import pino from 'pino';
import type { Operator } from '../src/operator/operator.ts';
import { ClusterAutoscaler } from '../src/runtime/autoscaler/cluster-autoscaler.ts';
import { KubernetesProvider } from '../src/runtime/autoscaler/kubernetes-provider.ts';
import { autoscalingView } from '../src/runtime/cluster/autoscaling-view.ts';
import { Head } from '../src/runtime/head.ts';
import { Worker } from '../src/runtime/worker.ts';
import type { RayCluster } from '../src/schema/raycluster.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';
import { repoRoot } from './cluster-harness.ts';
import { waitFor } from './harness.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { testOperator } from './kube/operator.ts';

const namespace = 'autoscaling-loop';
const rc = { group: 'rayline.dev', version: 'v1', namespace, plural: 'rayclusters' };
const token = 'loop-token';
const log = pino({ level: process.env.RAYLINE_TEST_LOG_LEVEL ?? 'silent' });
const sink = new Writable({ write: (_chunk, _enc, done) => done() });
const workersSelector = 'rayline.dev/cluster=loop,rayline.dev/node-type=worker';

let env: KubeTestEnv;
let operator: Operator;
let core: CoreV1Api;
let custom: CustomObjectsApi;

before(async () => {
  env = await startKubeTestEnv();
  core = env.kubeConfig.makeApiClient(CoreV1Api);
  custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  operator = testOperator(env, namespace, { idleRequeueMs: 5_000 });
  await operator.start();
});

after(async () => {
  await operator?.stop();
  await env?.stop();
});

const podNames = async () =>
  (await core.listNamespacedPod({ namespace, labelSelector: workersSelector })).items
    .map((p) => p.metadata!.name!)
    .sort();
const gpuGroup = async () =>
  ((await custom.getNamespacedCustomObject({ ...rc, name: 'loop' })) as RayCluster).spec.workerGroupSpecs![0];

test('unplaceable GPU replicas become worker pods through the RayCluster, and idle workers go again', async () => {
  const container = (limits: Record<string, string>) => ({
    spec: { containers: [{ name: 'rayline', image: 'rayline/rayline:0.1.0', resources: { limits } }] },
  });
  await custom.createNamespacedCustomObject({
    ...rc,
    body: {
      apiVersion: 'rayline.dev/v1',
      kind: 'RayCluster',
      metadata: { name: 'loop', namespace },
      spec: {
        enableInTreeAutoscaling: true,
        autoscalerOptions: { idleTimeoutSeconds: 1 },
        headGroupSpec: { rayStartParams: {}, template: container({ cpu: '2', memory: '4Gi' }) },
        workerGroupSpecs: [
          {
            groupName: 'gpu',
            replicas: 0,
            minReplicas: 0,
            maxReplicas: 3,
            rayStartParams: {},
            template: container({ cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' }),
          },
        ],
      },
    },
  });

  // The head pod's process, in this test process: no GPU of its own.
  const head = new Head({
    log,
    output: sink,
    logLevel: 'warn',
    http: { host: '127.0.0.1', port: 0 },
    dashboardPort: 0,
    metricsPort: 0,
    token,
    baseDir: repoRoot,
    accessLog: false,
    nodeId: 'loop-head',
    resources: { CPU: 2, GPU: 0 },
    cluster: { host: '127.0.0.1', port: 0, ip: '127.0.0.1' },
  });
  const addresses = await head.start();
  const autoscaler = new ClusterAutoscaler({
    provider: new KubernetesProvider({ kubeConfig: env.kubeConfig, namespace, clusterName: 'loop', log }),
    view: autoscalingView(head.cluster, head.controller),
    intervalMs: 200,
    log,
  });
  autoscaler.start();
  const workers: Worker[] = [];
  try {
    const config = parseServeConfig({
      applications: [
        {
          name: 'gpu',
          route_prefix: '/gpu',
          import_path: 'test/fixtures/cluster-app.ts:app',
          runtime_env: { working_dir: repoRoot },
          deployments: [{ name: 'Where', num_replicas: 2, ray_actor_options: { num_gpus: 1 } }],
        },
      ],
    });
    assert.ok(config.ok);
    head.apply(config.value);

    // Demand → replicas in the RayCluster → pods from the operator.
    const pods = await waitFor(
      async () => {
        const names = await podNames();
        return names.length === 2 ? names : undefined;
      },
      60_000,
      'the operator to create two GPU worker pods',
    );
    assert.equal((await gpuGroup()).replicas, 2);

    // The kubelet's part: each pod's `rayline start --address` joins under the pod's name.
    for (const name of pods) {
      const worker = new Worker({
        log,
        output: sink,
        headAddress: addresses.cluster!,
        token,
        nodeId: name,
        ip: '127.0.0.1',
        resources: { CPU: 2, GPU: 1, memory: 4 * 2 ** 30 },
        labels: {},
        group: 'gpu',
        http: { host: '127.0.0.1', port: 0 },
        metricsPort: 0,
      });
      workers.push(worker);
      await worker.start();
    }
    await head.waitForApplications(['RUNNING'], 60_000);
    const replicas = head.controller.applicationDetails().gpu.deployments.Where.replicas;
    assert.deepEqual(replicas.map((r) => r.node_id).sort(), pods, 'one replica on each new worker');
    assert.equal((await gpuGroup()).replicas, 2, 'no more workers than the demand needed');

    // Idle: the autoscaler names both pods; the operator deletes exactly those.
    head.deleteAll();
    await waitFor(async () => (await podNames()).length === 0, 60_000, 'the idle worker pods to be deleted');
    const group = await gpuGroup();
    assert.equal(group.replicas, 0);
    // Their processes end with their pods; then the provider clears workersToDelete.
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await waitFor(
      async () => ((await gpuGroup()).scaleStrategy?.workersToDelete ?? []).length === 0,
      30_000,
      'workersToDelete to be cleared',
    );
  } finally {
    await autoscaler.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await head.stop();
  }
});
