/**
 * The cluster autoscaler's Kubernetes provider against a real kube-apiserver: worker groups read
 * from a RayCluster, decisions written back as one guarded JSON patch, workersToDelete cleared once
 * those pods are gone, and, with the operator running, pods created and deleted exactly as decided.
 * There is no kubelet: the test creates and deletes worker pods itself where the operator does not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import pino from 'pino';
import { Operator } from '../src/operator/operator.ts';
import { KubernetesProvider } from '../src/runtime/autoscaler/kubernetes-provider.ts';
import type { ScaleDecision } from '../src/runtime/autoscaler/types.ts';
import type { RayCluster } from '../src/schema/raycluster.ts';
import { waitFor } from './harness.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';

const ns = 'autoscaler-test';
const GiB = 2 ** 30;
const image = 'rayline/rayline:0.1.0';
const rc = { group: 'rayline.dev', version: 'v1', namespace: ns, plural: 'rayclusters' };
const testFinalizer = 'rayline.dev/test-hold';
const log = pino({ level: process.env.RAYLINE_TEST_LOG_LEVEL ?? 'silent' });

let env: KubeTestEnv;
let custom: CustomObjectsApi;
let core: CoreV1Api;

before(async () => {
  env = await startKubeTestEnv();
  custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
  core = env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
});

after(async () => {
  await env?.stop();
});

function container(limits: Record<string, string>) {
  return { spec: { containers: [{ name: 'rayline', image, resources: { limits } }] } };
}

/** cpu (plain), gpu (nvidia.com/gpu, own idle timeout), tpu (two hosts per replica). */
function workerGroups() {
  return [
    {
      groupName: 'cpu',
      replicas: 1,
      minReplicas: 1,
      maxReplicas: 5,
      // An explicit flag wins over the container's limits.
      rayStartParams: { 'num-cpus': '3' },
      template: container({ cpu: '4', memory: '16Gi' }),
    },
    {
      groupName: 'gpu',
      minReplicas: 0,
      maxReplicas: 3,
      idleTimeoutSeconds: 300,
      rayStartParams: {},
      template: container({ cpu: '8', memory: '32Gi', 'nvidia.com/gpu': '2' }),
    },
    {
      groupName: 'tpu',
      replicas: 0,
      minReplicas: 1,
      maxReplicas: 2,
      numOfHosts: 2,
      rayStartParams: {},
      template: container({ cpu: '2', memory: '8Gi', 'google.com/tpu': '4' }),
    },
  ];
}

async function createCluster(name: string, spec: Record<string, unknown>, namespace = ns): Promise<void> {
  const body: RayCluster = {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    metadata: { name, namespace },
    spec: {
      headGroupSpec: { rayStartParams: {}, template: container({ cpu: '2', memory: '4Gi' }) },
      ...spec,
    } as RayCluster['spec'],
  };
  await custom.createNamespacedCustomObject({ ...rc, namespace, body });
}

async function getCluster(name: string, namespace = ns): Promise<RayCluster> {
  return (await custom.getNamespacedCustomObject({ ...rc, namespace, name })) as RayCluster;
}

/** [replicas, scaleStrategy] per group, as stored. */
async function groupsOf(name: string): Promise<Record<string, [number | undefined, unknown]>> {
  const cluster = await getCluster(name);
  return Object.fromEntries(
    (cluster.spec.workerGroupSpecs ?? []).map((g) => [g.groupName, [g.replicas, g.scaleStrategy]]),
  );
}

function provider(
  clusterName: string,
  kubeConfig: KubeConfig = env.kubeConfig,
  namespace = ns,
): KubernetesProvider {
  return new KubernetesProvider({ kubeConfig, namespace, clusterName, log });
}

/** A worker pod as the operator would label it; `hold` adds a finalizer so deletion leaves it Terminating. */
async function createWorkerPod(cluster: string, group: string, name: string, hold = false): Promise<void> {
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name,
        labels: {
          'rayline.dev/cluster': cluster,
          'rayline.dev/node-type': 'worker',
          'rayline.dev/group': group,
        },
        ...(hold ? { finalizers: [testFinalizer] } : {}),
      },
      spec: { containers: [{ name: 'rayline', image }] },
    },
  });
}

async function podNames(selector: string, namespace = ns): Promise<string[]> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
  return pods.items.map((p: V1Pod) => p.metadata!.name!).sort();
}

async function waitPodGone(name: string): Promise<void> {
  await waitFor(
    async () =>
      (await core.listNamespacedPod({ namespace: ns, fieldSelector: `metadata.name=${name}` })).items
        .length === 0,
    30_000,
    `pod ${name} to be gone`,
  );
}

describe('KubernetesProvider', () => {
  test('shape() maps worker groups, per-worker resources, limits and autoscaler options', async () => {
    await createCluster('shape', {
      enableInTreeAutoscaling: true,
      autoscalerOptions: { idleTimeoutSeconds: 120, upscalingMode: 'Conservative' },
      workerGroupSpecs: workerGroups(),
    });
    assert.deepEqual(await provider('shape').shape(), {
      groups: [
        { name: 'cpu', resourcesPerWorker: { CPU: 3, memory: 16 * GiB }, minWorkers: 1, maxWorkers: 5 },
        {
          name: 'gpu',
          resourcesPerWorker: { CPU: 8, GPU: 2, memory: 32 * GiB },
          minWorkers: 0,
          maxWorkers: 3,
          idleTimeoutS: 300,
        },
        {
          name: 'tpu',
          resourcesPerWorker: { CPU: 2, memory: 8 * GiB, TPU: 4 },
          minWorkers: 2,
          maxWorkers: 4,
        },
      ],
      idleTimeoutS: 120,
      upscalingMode: 'Conservative',
    });

    await createCluster('shape-defaults', { workerGroupSpecs: [workerGroups()[0]] });
    assert.deepEqual(await provider('shape-defaults').shape(), {
      groups: [
        { name: 'cpu', resourcesPerWorker: { CPU: 3, memory: 16 * GiB }, minWorkers: 1, maxWorkers: 5 },
      ],
      idleTimeoutS: 60,
      upscalingMode: 'Default',
    });
  });

  test('workers() lists the cluster worker pods with group and state', async () => {
    await createCluster('workers', { workerGroupSpecs: workerGroups() });
    await createWorkerPod('workers', 'cpu', 'workers-cpu-a');
    await createWorkerPod('workers', 'gpu', 'workers-gpu-a');
    await createWorkerPod('workers', 'gpu', 'workers-gpu-b', true);
    // Another cluster's pod is not this provider's.
    await createWorkerPod('other', 'cpu', 'other-cpu-a');
    await core.patchNamespacedPodStatus(
      {
        namespace: ns,
        name: 'workers-gpu-a',
        body: [{ op: 'add', path: '/status/phase', value: 'Running' }],
      },
      jsonPatch(),
    );
    await core.deleteNamespacedPod({ namespace: ns, name: 'workers-gpu-b' });

    const workers = (await provider('workers').workers()).sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(workers, [
      { id: 'workers-cpu-a', group: 'cpu', state: 'pending' },
      { id: 'workers-gpu-a', group: 'gpu', state: 'running' },
      { id: 'workers-gpu-b', group: 'gpu', state: 'terminating' },
    ]);
    await releaseFinalizer('workers-gpu-b');
  });

  test('apply() writes replicas and workersToDelete in one patch; an unchanged decision sends none', async () => {
    await createCluster('apply', { workerGroupSpecs: workerGroups() });
    const p = provider('apply');
    const decision: ScaleDecision = {
      groups: [
        { name: 'cpu', targetWorkers: 3, remove: [] },
        { name: 'gpu', targetWorkers: 1, remove: ['apply-gpu-x', 'apply-gpu-y'] },
        // Two hosts per replica: 4 workers are 2 replicas.
        { name: 'tpu', targetWorkers: 4, remove: [] },
      ],
    };
    const before = await getCluster('apply');
    await p.apply(decision);
    const afterFirst = await getCluster('apply');
    assert.equal(afterFirst.metadata.generation, (before.metadata.generation ?? 0) + 1, 'exactly one write');
    assert.deepEqual(await groupsOf('apply'), {
      cpu: [3, undefined],
      gpu: [1, { workersToDelete: ['apply-gpu-x', 'apply-gpu-y'] }],
      tpu: [2, undefined],
    });
    // Nothing else of the groups moved.
    assert.deepEqual(
      afterFirst.spec.workerGroupSpecs?.map((g) => [g.groupName, g.minReplicas, g.maxReplicas, g.template]),
      workerGroups().map((g) => [g.groupName, g.minReplicas, g.maxReplicas, g.template]),
    );

    // The same decision, or one naming only workers already listed, changes nothing: no request.
    await p.apply(decision);
    await p.apply({ groups: [{ name: 'gpu', targetWorkers: 1, remove: ['apply-gpu-y'] }] });
    assert.equal((await getCluster('apply')).metadata.resourceVersion, afterFirst.metadata.resourceVersion);

    // New names join those the operator may not have handled yet.
    await p.apply({ groups: [{ name: 'gpu', targetWorkers: 0, remove: ['apply-gpu-z'] }] });
    assert.deepEqual((await groupsOf('apply')).gpu, [
      0,
      { workersToDelete: ['apply-gpu-x', 'apply-gpu-y', 'apply-gpu-z'] },
    ]);
  });

  test('reconcile() clears workersToDelete only once every listed pod is gone', async () => {
    await createCluster('clear', { workerGroupSpecs: workerGroups() });
    const p = provider('clear');
    await createWorkerPod('clear', 'gpu', 'clear-gpu-a');
    await createWorkerPod('clear', 'gpu', 'clear-gpu-b', true);
    await createWorkerPod('clear', 'cpu', 'clear-cpu-a');
    await p.apply({
      groups: [
        { name: 'gpu', targetWorkers: 0, remove: ['clear-gpu-a', 'clear-gpu-b'] },
        { name: 'cpu', targetWorkers: 1, remove: ['clear-cpu-a'] },
      ],
    });
    const listed = {
      cpu: [1, { workersToDelete: ['clear-cpu-a'] }],
      gpu: [0, { workersToDelete: ['clear-gpu-a', 'clear-gpu-b'] }],
      tpu: [0, undefined],
    };
    assert.deepEqual(await groupsOf('clear'), listed);

    await p.reconcile();
    const untouched = (await getCluster('clear')).metadata.resourceVersion;
    assert.deepEqual(await groupsOf('clear'), listed);

    // One gpu pod gone, the other still terminating: gpu stays listed; cpu is cleared once its pod goes.
    await core.deleteNamespacedPod({ namespace: ns, name: 'clear-gpu-a' });
    await core.deleteNamespacedPod({ namespace: ns, name: 'clear-gpu-b' });
    await core.deleteNamespacedPod({ namespace: ns, name: 'clear-cpu-a' });
    await waitPodGone('clear-gpu-a');
    await waitPodGone('clear-cpu-a');
    await p.reconcile();
    assert.notEqual((await getCluster('clear')).metadata.resourceVersion, untouched);
    assert.deepEqual(await groupsOf('clear'), {
      ...listed,
      cpu: [1, { workersToDelete: [] }],
    });

    await releaseFinalizer('clear-gpu-b');
    await waitPodGone('clear-gpu-b');
    await p.reconcile();
    assert.deepEqual(await groupsOf('clear'), {
      cpu: [1, { workersToDelete: [] }],
      gpu: [0, { workersToDelete: [] }],
      tpu: [0, undefined],
    });
    // Nothing left to clear: no request.
    const cleared = (await getCluster('clear')).metadata.resourceVersion;
    await p.reconcile();
    assert.equal((await getCluster('clear')).metadata.resourceVersion, cleared);
  });

  test('a patch racing a reorder of workerGroupSpecs fails and changes nothing', async () => {
    await createCluster('race', { workerGroupSpecs: workerGroups() });
    // Reorders the groups right after the provider has read the cluster, before it patches.
    let armed = true;
    const racing = racingKubeConfig(env.kubeConfig, async () => {
      if (!armed) return;
      armed = false;
      const cluster = await getCluster('race');
      const groups = cluster.spec.workerGroupSpecs ?? [];
      await custom.patchNamespacedCustomObject(
        {
          ...rc,
          name: 'race',
          body: [{ op: 'replace', path: '/spec/workerGroupSpecs', value: [groups[1], groups[0], groups[2]] }],
        },
        jsonPatch(),
      );
    });
    const p = provider('race', racing);
    await assert.rejects(
      p.apply({ groups: [{ name: 'cpu', targetWorkers: 4, remove: ['race-cpu-a'] }] }),
      (err: Error) => {
        assert.equal(
          err.message,
          'patching RayCluster autoscaler-test/race (scaling): HTTP 422: the server rejected our request ' +
            'due to an error in our request (worker groups reordered or renamed since they were read?)',
        );
        return true;
      },
    );
    assert.equal(armed, false);
    const after = await getCluster('race');
    assert.deepEqual(
      after.spec.workerGroupSpecs?.map((g) => [g.groupName, g.replicas, g.scaleStrategy]),
      [
        ['gpu', 0, undefined],
        ['cpu', 1, undefined],
        ['tpu', 0, undefined],
      ],
    );

    // The next round reads the new order and patches the right group.
    await p.apply({ groups: [{ name: 'cpu', targetWorkers: 4, remove: ['race-cpu-a'] }] });
    assert.deepEqual(
      (await getCluster('race')).spec.workerGroupSpecs?.map((g) => [
        g.groupName,
        g.replicas,
        g.scaleStrategy,
      ]),
      [
        ['gpu', 0, undefined],
        ['cpu', 4, { workersToDelete: ['race-cpu-a'] }],
        ['tpu', 0, undefined],
      ],
    );
  });
});

describe('KubernetesProvider with the operator', () => {
  // A namespace of its own: the operator would otherwise make pods for the clusters above.
  const opNs = 'autoscaler-operator';
  let operator: Operator | undefined;

  before(async () => {
    await core.createNamespace({ body: { metadata: { name: opNs } } });
    operator = new Operator({
      kubeConfig: env.kubeConfig,
      log,
      namespaces: [opNs],
      host: '127.0.0.1',
      metricsPort: 0,
      healthPort: 0,
      busyRequeueMs: 300,
      idleRequeueMs: 5_000,
    });
    await operator.start();
  });

  after(async () => {
    await operator?.stop();
  });

  /** Waits until the operator has reconciled the cluster's current spec. */
  async function waitObserved(name: string): Promise<void> {
    await waitFor(
      async () => {
        const cluster = await getCluster(name, opNs);
        return cluster.status?.observedGeneration === cluster.metadata.generation;
      },
      60_000,
      `the operator to observe RayCluster ${name}'s latest generation`,
    );
  }

  test("the provider's patches make the operator create and delete exactly the pods named", async () => {
    await createCluster(
      'scaled',
      {
        enableInTreeAutoscaling: true,
        workerGroupSpecs: [
          {
            groupName: 'cpu',
            replicas: 0,
            minReplicas: 0,
            maxReplicas: 5,
            rayStartParams: {},
            template: container({ cpu: '2', memory: '4Gi' }),
          },
        ],
      },
      opNs,
    );
    const p = provider('scaled', env.kubeConfig, opNs);
    const workers = 'rayline.dev/cluster=scaled,rayline.dev/node-type=worker';
    await waitObserved('scaled');
    assert.deepEqual(await podNames(workers, opNs), []);

    await p.apply({ groups: [{ name: 'cpu', targetWorkers: 3, remove: [] }] });
    await waitFor(async () => (await podNames(workers, opNs)).length === 3, 60_000, 'three worker pods');
    await waitObserved('scaled');
    const three = await podNames(workers, opNs);
    assert.equal(three.length, 3);
    assert.deepEqual((await p.workers()).map((w) => w.id).sort(), three);

    const [gone, ...kept] = three;
    await p.apply({ groups: [{ name: 'cpu', targetWorkers: 2, remove: [gone] }] });
    await waitFor(
      async () => JSON.stringify(await podNames(workers, opNs)) === JSON.stringify(kept),
      60_000,
      () => `only ${kept.join(', ')} to remain`,
    );
    await waitObserved('scaled');
    assert.deepEqual(await podNames(workers, opNs), kept);

    await p.reconcile();
    assert.deepEqual((await getCluster('scaled', opNs)).spec.workerGroupSpecs?.[0].scaleStrategy, {
      workersToDelete: [],
    });
    // With the list cleared the operator neither recreates the removed pod nor deletes another.
    await waitObserved('scaled');
    assert.deepEqual(await podNames(workers, opNs), kept);
    assert.equal((await getCluster('scaled', opNs)).spec.workerGroupSpecs?.[0].replicas, 2);
  });
});

function jsonPatch() {
  return setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
}

/** A kubeconfig whose CustomObjectsApi clients run `afterRead` between a read and its return. */
function racingKubeConfig(base: KubeConfig, afterRead: () => Promise<void>): KubeConfig {
  const config = Object.create(base) as KubeConfig;
  config.makeApiClient = ((apiClass: Parameters<KubeConfig['makeApiClient']>[0]) => {
    const api = base.makeApiClient(apiClass);
    if (api instanceof CustomObjectsApi) {
      const read = api.getNamespacedCustomObject.bind(api);
      api.getNamespacedCustomObject = async (...args) => {
        const object = await read(...args);
        await afterRead();
        return object;
      };
    }
    return api;
  }) as KubeConfig['makeApiClient'];
  return config;
}

async function releaseFinalizer(name: string): Promise<void> {
  await core.patchNamespacedPod(
    { namespace: ns, name, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
    jsonPatch(),
  );
}
