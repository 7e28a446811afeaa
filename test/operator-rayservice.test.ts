/**
 * The RayService controller against a real kube-apiserver, submitting serveConfigV2 to real Rayline
 * heads that the test runs on loopback (the operator's head address is overridden to reach them).
 * There is no kubelet: the test marks pods running and ready.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeClient } from '../src/operator/kube/client.ts';
import {
  Events,
  type KubeObject,
  Pods,
  RayClusters,
  RayServices,
  Services,
} from '../src/operator/kube/resources.ts';
import type { Operator } from '../src/operator/operator.ts';
import type { Pod, Service } from '../src/operator/raycluster/kube-types.ts';
import { KubernetesProvider } from '../src/runtime/autoscaler/kubernetes-provider.ts';
import type { Condition } from '../src/schema/kube-common.ts';
import type { RayCluster } from '../src/schema/raycluster.ts';
import type { RayService } from '../src/schema/rayservice.ts';
import { startTestHead, type TestHead, waitFor } from './harness.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { createNamespace, testOperator } from './kube/operator.ts';

const ns = 'rs-test';
let env: KubeTestEnv;
let client: KubeClient;
let operator: Operator;
let metricsUrl = '';
/** Which local head plays the head of which RayCluster. */
const heads = new Map<string, TestHead>();

before(async () => {
  env = await startKubeTestEnv();
  client = new KubeClient(env.kubeConfig);
  await createNamespace(client, ns);
  operator = testOperator(env, ns, {
    idleRequeueMs: 1_000,
    headAddress: (cluster) => heads.get(cluster.metadata.name ?? '')?.rest.address ?? 'http://127.0.0.1:9',
  });
  metricsUrl = `${(await operator.start()).metricsUrl}/metrics`;
});

/** The clusters the operator says it created, in order: a second one for one spec would show here. */
async function createdClusters(): Promise<string[]> {
  const { items } = await client.list<
    KubeObject & { reason?: string; message?: string; firstTimestamp?: string }
  >(Events, { namespace: ns });
  return items
    .filter((e) => e.reason === 'CreatedRayCluster')
    .sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? ''))
    .map((e) => /RayCluster (\S+)/.exec(e.message ?? '')?.[1] ?? '');
}

async function rayServiceReconciles(): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return [
    ...text.matchAll(/^controller_runtime_reconcile_total\{controller="rayservice",[^}]*\} (\d+)/gm),
  ].reduce((n, m) => n + Number(m[1]), 0);
}

after(async () => {
  await operator?.stop();
  for (const head of new Set(heads.values())) await head.stop();
  await client?.close();
  await env?.stop();
});

const serveConfig = (route: string) => `applications:
  - name: hello
    route_prefix: ${route}
    import_path: ../../examples/hello/app.ts:app
    deployments:
      - name: HelloModel
        num_replicas: 1
`;

const template = (image: string) => ({ spec: { containers: [{ name: 'rayline', image }] } });

function clusterConfig(image: string) {
  return {
    headGroupSpec: { rayStartParams: {}, template: template(image) },
    workerGroupSpecs: [
      { groupName: 'cpu', replicas: 1, minReplicas: 1, maxReplicas: 3, template: template(image) },
    ],
  };
}

async function getService(): Promise<RayService> {
  const rs = await client.get<RayService & KubeObject>(RayServices, ns, 'demo');
  assert.ok(rs);
  return rs;
}

function conditionOf(rs: RayService, type: string): Condition | undefined {
  return rs.status?.conditions?.find((c) => c.type === type);
}

async function waitForService(
  what: string,
  check: (rs: RayService) => boolean,
  timeoutMs = 60_000,
): Promise<RayService> {
  let last: RayService | undefined;
  return waitFor(
    async () => {
      last = await getService();
      return check(last) ? last : undefined;
    },
    timeoutMs,
    () => `RayService ${what}; status: ${JSON.stringify(last?.status)}`,
  );
}

async function podsOf(cluster: string): Promise<Pod[]> {
  const { items } = await client.list<Pod & KubeObject>(Pods, {
    namespace: ns,
    labelSelector: `rayline.dev/cluster=${cluster}`,
  });
  return items.filter((p) => !p.metadata?.deletionTimestamp);
}

/** Plays the kubelet: every pod of the cluster runs and is ready. */
async function runPods(cluster: string, count: number): Promise<void> {
  let pods: Pod[] = [];
  await waitFor(
    async () => {
      pods = await podsOf(cluster);
      return pods.length === count;
    },
    30_000,
    `${count} pods of ${cluster}`,
  );
  for (const [i, pod] of pods.entries()) {
    await client.patchStatus(Pods, ns, pod.metadata?.name ?? '', 'merge', {
      status: {
        phase: 'Running',
        podIP: `10.1.${heads.size}.${i + 1}`,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }],
      },
    });
  }
}

async function serviceSelector(name: string): Promise<Record<string, string> | undefined> {
  return (await client.get<Service & KubeObject>(Services, ns, name))?.spec?.selector;
}

let firstCluster = '';

test('a RayService gets its cluster, submits serveConfigV2 to the head, mirrors status and points its services', async () => {
  await client.create<KubeObject>(RayServices, {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayService',
    metadata: { name: 'demo', namespace: ns },
    spec: {
      serveConfigV2: serveConfig('/hello'),
      rayClusterConfig: clusterConfig('rayline:1'),
      rayClusterDeletionDelaySeconds: 5,
    },
  } as KubeObject);
  const pending = await waitForService(
    'has a pending cluster',
    (rs) => !!rs.status?.pendingServiceStatus?.rayClusterName,
  );
  firstCluster = pending.status?.pendingServiceStatus?.rayClusterName ?? '';
  assert.match(firstCluster, /^demo-[a-z0-9]{5}$/);
  const cluster = await client.get<RayCluster & KubeObject>(RayClusters, ns, firstCluster);
  assert.equal(cluster?.metadata.labels?.['rayline.dev/originated-from-cr-name'], 'demo');
  assert.equal(cluster?.metadata.ownerReferences?.[0]?.kind, 'RayService');

  const head = await startTestHead();
  heads.set(firstCluster, head);
  await runPods(firstCluster, 2);
  const ready = await waitForService('Ready', (rs) => conditionOf(rs, 'Ready')?.status === 'True');
  assert.equal(ready.status?.activeServiceStatus?.rayClusterName, firstCluster);
  assert.equal(ready.status?.pendingServiceStatus, undefined);
  assert.equal(ready.status?.serviceStatus, 'Running');
  assert.deepEqual(ready.status?.activeServiceStatus?.applicationStatuses, {
    hello: { status: 'RUNNING', serveDeploymentStatuses: { HelloModel: { status: 'HEALTHY' } } },
  });
  assert.equal(head.head.controller.applicationDetails().hello?.route_prefix, '/hello');
  assert.deepEqual(await serviceSelector('demo-serve-svc'), {
    'rayline.dev/cluster': firstCluster,
    'rayline.dev/serve': 'true',
  });
  assert.deepEqual(await serviceSelector('demo-head-svc'), {
    'rayline.dev/cluster': firstCluster,
    'rayline.dev/node-type': 'head',
  });
  await waitForService('counts 2 serve endpoints', (rs) => rs.status?.numServeEndpoints === 2);
  assert.deepEqual(await createdClusters(), [firstCluster]);
  // Settled: reconciles go on, but neither the RayService nor its cluster is written again.
  const versions = async () =>
    [
      (await getService()).metadata.resourceVersion,
      (await client.get(RayClusters, ns, firstCluster))?.metadata?.resourceVersion,
    ].join();
  await waitFor(
    async () => {
      const before = await versions();
      const start = await rayServiceReconciles();
      await waitFor(async () => (await rayServiceReconciles()) >= start + 3, 30_000, '3 more reconciles');
      return (await versions()) === before;
    },
    60_000,
    'no more status writes once settled',
  );
});

test('a serveConfigV2 change is re-submitted to the same cluster', async () => {
  await client.patch(RayServices, ns, 'demo', 'merge', { spec: { serveConfigV2: serveConfig('/hi') } });
  const head = heads.get(firstCluster);
  assert.ok(head);
  await waitFor(
    () => head.head.controller.applicationDetails().hello?.route_prefix === '/hi',
    60_000,
    'route /hi on the head',
  );
  const rs = await waitForService('Ready again', (s) => conditionOf(s, 'Ready')?.status === 'True');
  assert.equal(rs.status?.activeServiceStatus?.rayClusterName, firstCluster);
  const { items } = await client.list(RayClusters, { namespace: ns });
  assert.equal(items.length, 1);
});

test('a head that restarted with no applications gets the config back', async () => {
  const old = heads.get(firstCluster);
  assert.ok(old);
  await old.stop();
  // While the head is down its workers keep serving: several reconciles later, every pod still has
  // the serve label.
  const start = await rayServiceReconciles();
  await waitFor(
    async () => (await rayServiceReconciles()) >= start + 3,
    30_000,
    '3 reconciles with the head down',
  );
  const serving = (await podsOf(firstCluster)).filter(
    (p) => p.metadata?.labels?.['rayline.dev/serve'] === 'true',
  );
  assert.equal(serving.length, 2);
  assert.equal((await getService()).status?.numServeEndpoints, 2);
  const fresh = await startTestHead();
  heads.set(firstCluster, fresh);
  await fresh.waitForApp('hello', ['RUNNING'], 60_000);
  assert.equal(fresh.head.controller.applicationDetails().hello?.route_prefix, '/hi');
  const rs = await waitForService('Ready on the new head, saying why', (s) =>
    /the head restarted at .* and serveConfigV2 was re-submitted/.test(
      conditionOf(s, 'Ready')?.message ?? '',
    ),
  );
  assert.equal(conditionOf(rs, 'Ready')?.status, 'True');
  const { items } = await client.list<KubeObject & { reason?: string; message?: string }>(Events, {
    namespace: ns,
  });
  const restarted = items.filter((e) => e.reason === 'HeadRestarted');
  assert.equal(restarted.length, 1);
  assert.match(restarted[0]?.message ?? '', new RegExp(`head of ${firstCluster} reports no applications`));
});

test('an invalid serveConfigV2 is reported with its field and line, and nothing else changes', async () => {
  const broken = serveConfig('/hi').replace('num_replicas: 1', 'num_replicas: -3');
  await client.patch(RayServices, ns, 'demo', 'merge', { spec: { serveConfigV2: broken } });
  const rs = await waitForService(
    'ValidationFailed',
    (s) => conditionOf(s, 'Ready')?.reason === 'ValidationFailed',
  );
  assert.match(
    conditionOf(rs, 'Ready')?.message ?? '',
    /^serveConfigV2 line 7: applications\[0\]\.deployments\[0\]\.num_replicas: /,
  );
  assert.equal(rs.status?.activeServiceStatus?.rayClusterName, firstCluster);
  assert.equal(heads.get(firstCluster)?.head.controller.applicationDetails().hello?.status, 'RUNNING');
  const { items } = await client.list(RayClusters, { namespace: ns });
  assert.equal(items.length, 1);
  await client.patch(RayServices, ns, 'demo', 'merge', { spec: { serveConfigV2: serveConfig('/hi') } });
  await waitForService('valid again', (s) => conditionOf(s, 'Ready')?.status === 'True');
});

test('autoscaler patches on the active cluster neither trigger an upgrade nor get overwritten', async () => {
  const provider = new KubernetesProvider({
    kubeConfig: env.kubeConfig,
    namespace: ns,
    clusterName: firstCluster,
  });
  await provider.apply({ groups: [{ name: 'cpu', targetWorkers: 3, remove: [] }] });
  await runPods(firstCluster, 4);
  // Several reconciles of the RayService later, nothing is pending and the replicas stay the autoscaler's.
  const start = await rayServiceReconciles();
  await waitFor(
    async () => (await rayServiceReconciles()) >= start + 3,
    30_000,
    '3 more RayService reconciles',
  );
  const cluster = await client.get<RayCluster & KubeObject>(RayClusters, ns, firstCluster);
  assert.equal(cluster?.spec.workerGroupSpecs?.[0]?.replicas, 3);
  assert.equal((await getService()).status?.pendingServiceStatus, undefined);
  assert.equal((await client.list(RayClusters, { namespace: ns })).items.length, 1);
});

test('a cluster spec change upgrades to a new cluster: traffic moves only when it runs, the old one goes after the delay', async () => {
  const serveService = await client.get<Service & KubeObject>(Services, ns, 'demo-serve-svc');
  await client.patch(RayServices, ns, 'demo', 'merge', {
    spec: { rayClusterConfig: clusterConfig('rayline:2') },
  });
  const upgrading = await waitForService(
    'upgrading',
    (s) => conditionOf(s, 'UpgradeInProgress')?.status === 'True',
  );
  const next = upgrading.status?.pendingServiceStatus?.rayClusterName ?? '';
  assert.ok(next && next !== firstCluster);
  // The new cluster's head is not ready: traffic stays where it is.
  assert.equal((await serviceSelector('demo-serve-svc'))?.['rayline.dev/cluster'], firstCluster);
  assert.equal((await getService()).status?.activeServiceStatus?.rayClusterName, firstCluster);

  heads.set(next, await startTestHead());
  await runPods(next, 2);
  const switched = await waitForService('switched, never without serve endpoints', (s) => {
    assert.ok((s.status?.numServeEndpoints ?? 0) > 0, `no serve endpoints: ${JSON.stringify(s.status)}`);
    return s.status?.activeServiceStatus?.rayClusterName === next;
  });
  assert.deepEqual(await createdClusters(), [firstCluster, next]);
  assert.equal(conditionOf(switched, 'UpgradeInProgress')?.status, 'False');
  assert.equal(heads.get(next)?.head.controller.applicationDetails().hello?.status, 'RUNNING');
  const after = await client.get<Service & KubeObject>(Services, ns, 'demo-serve-svc');
  assert.equal(after?.spec?.selector?.['rayline.dev/cluster'], next);
  assert.equal(after?.spec?.clusterIP, serveService?.spec?.clusterIP, 'the ClusterIP is kept');
  // Kept for rayClusterDeletionDelaySeconds: the reconcile that switched used to delete it at once,
  // since its cache had not seen the delete-after annotation yet.
  const old = await client.get<RayCluster & KubeObject>(RayClusters, ns, firstCluster);
  assert.ok(old && !old.metadata.deletionTimestamp, 'the old cluster outlives the switch');
  await waitFor(
    async () => (await client.get(RayClusters, ns, firstCluster)) === null,
    30_000,
    'the old cluster deleted',
  );
});

test('upgradeStrategy None applies nothing and says so', async () => {
  await client.patch(RayServices, ns, 'demo', 'merge', {
    spec: { upgradeStrategy: { type: 'None' }, rayClusterConfig: clusterConfig('rayline:3') },
  });
  const rs = await waitForService(
    'UpgradeStrategyNone',
    (s) => conditionOf(s, 'UpgradeInProgress')?.reason === 'UpgradeStrategyNone',
  );
  assert.equal(rs.status?.pendingServiceStatus, undefined);
  assert.equal((await client.list(RayClusters, { namespace: ns })).items.length, 1);
});

test('an upgrade that cannot schedule says why in its condition', async () => {
  await client.patch(RayServices, ns, 'demo', 'merge', {
    spec: { upgradeStrategy: { type: 'NewCluster' }, rayClusterConfig: clusterConfig('rayline:4') },
  });
  const upgrading = await waitForService(
    'upgrading',
    (s) => !!s.status?.pendingServiceStatus?.rayClusterName,
  );
  const stuck = upgrading.status?.pendingServiceStatus?.rayClusterName ?? '';
  let pods: Pod[] = [];
  await waitFor(
    async () => {
      pods = await podsOf(stuck);
      return pods.length === 2;
    },
    30_000,
    'pods of the stuck cluster',
  );
  const message = '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.';
  await client.patchStatus(Pods, ns, pods[0]?.metadata?.name ?? '', 'merge', {
    status: {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message,
          lastTransitionTime: new Date().toISOString(),
        },
      ],
    },
  });
  const rs = await waitForService(
    'stuck reported',
    (s) => conditionOf(s, 'UpgradeInProgress')?.reason === 'PodUnschedulable',
    60_000,
  );
  assert.match(
    conditionOf(rs, 'UpgradeInProgress')?.message ?? '',
    /cannot be scheduled: 0\/3 nodes are available: 3 Insufficient nvidia\.com\/gpu\./,
  );
  assert.equal(conditionOf(rs, 'Ready')?.status, 'True', 'the active cluster keeps serving');
});
