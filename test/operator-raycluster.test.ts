/**
 * The RayCluster controller against a real kube-apiserver and etcd: pods, services, secret and RBAC
 * as built; scaling; workersToDelete; replacement of failed pods; status; recovery after the API
 * server restarts. There is no kubelet: the test plays it by setting pod status.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeClient } from '../src/operator/kube/client.ts';
import {
  type KubeObject,
  NetworkPolicies,
  Pods,
  RayClusters,
  RoleBindings,
  Roles,
  Secrets,
  ServiceAccounts,
  Services,
} from '../src/operator/kube/resources.ts';
import type { Operator } from '../src/operator/operator.ts';
import type { Pod } from '../src/operator/raycluster/kube-types.ts';
import type { RayCluster } from '../src/schema/raycluster.ts';
import { waitFor } from './harness.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { createNamespace, testOperator } from './kube/operator.ts';

let env: KubeTestEnv;
let client: KubeClient;
let operator: Operator;
let metricsUrl: string;
let healthUrl: string;
const ns = 'rc-test';

before(async () => {
  env = await startKubeTestEnv();
  client = new KubeClient(env.kubeConfig);
  await createNamespace(client, ns);
  operator = testOperator(env, ns, { idleRequeueMs: 5_000, dashboardPolicyNamespace: 'rayline-system' });
  const urls = await operator.start();
  metricsUrl = `${urls.metricsUrl}/metrics`;
  healthUrl = urls.healthUrl;
});

after(async () => {
  await operator?.stop();
  await client?.close();
  await env?.stop();
});

const image = 'rayline/rayline:0.1.0';

function rayCluster(name: string, spec: Record<string, unknown>): RayCluster & KubeObject {
  return {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    metadata: { name, namespace: ns },
    spec: {
      headGroupSpec: {
        rayStartParams: {},
        template: {
          spec: { containers: [{ name: 'head', image, resources: { limits: { cpu: '2', memory: '4Gi' } } }] },
        },
      },
      ...spec,
    } as RayCluster['spec'],
  };
}

const gpuGroup = (fields: Record<string, unknown>) => ({
  groupName: 'gpu',
  rayStartParams: {},
  template: {
    spec: {
      containers: [
        { name: 'worker', image, resources: { limits: { cpu: '8', memory: '32Gi', 'nvidia.com/gpu': 1 } } },
      ],
    },
  },
  ...fields,
});

async function podsOf(cluster: string, type?: 'head' | 'worker'): Promise<Pod[]> {
  const selector = `rayline.dev/cluster=${cluster}${type ? `,rayline.dev/node-type=${type}` : ''}`;
  const { items } = await client.list<Pod & KubeObject>(Pods, { namespace: ns, labelSelector: selector });
  return items.filter((p) => !p.metadata?.deletionTimestamp);
}

async function waitForPods(cluster: string, type: 'head' | 'worker', count: number): Promise<Pod[]> {
  let pods: Pod[] = [];
  await waitFor(
    async () => {
      pods = await podsOf(cluster, type);
      return pods.length === count;
    },
    30_000,
    () => `${count} ${type} pods of ${cluster} (have ${pods.length})`,
  );
  return pods;
}

/** What a kubelet would report for a running, ready pod. */
async function markRunning(pod: Pod, ip: string): Promise<void> {
  await client.patchStatus(Pods, ns, pod.metadata?.name ?? '', 'merge', {
    status: {
      phase: 'Running',
      podIP: ip,
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }],
    },
  });
}

async function patchCluster(name: string, patch: object[]): Promise<void> {
  await client.patch(RayClusters, ns, name, 'json', patch);
}

async function getCluster(name: string): Promise<RayCluster> {
  const cluster = await client.get<RayCluster & KubeObject>(RayClusters, ns, name);
  assert.ok(cluster);
  return cluster;
}

test('a GPU RayCluster becomes a head pod, worker pods with GPU limits and start flags, the head service, a token secret and autoscaler RBAC', async () => {
  await client.create(
    RayClusters,
    rayCluster('gpu', {
      enableInTreeAutoscaling: true,
      workerGroupSpecs: [gpuGroup({ replicas: 2, maxReplicas: 4 })],
    }),
  );
  const [head] = await waitForPods('gpu', 'head', 1);
  const workers = await waitForPods('gpu', 'worker', 2);
  assert.ok(head);
  assert.match(head.metadata?.name ?? '', /^gpu-head-/);
  assert.equal(head.metadata?.ownerReferences?.[0]?.kind, 'RayCluster');
  assert.equal(head.spec?.serviceAccountName, 'gpu-autoscaler');
  assert.deepEqual(head.spec?.containers[0]?.args, [
    'start',
    '--head',
    '--autoscaling-provider=kubernetes',
    '--block',
    '--dashboard-host=0.0.0.0',
    `--memory=${4 * 2 ** 30}`,
    '--num-cpus=2',
  ]);
  for (const worker of workers) {
    const container = worker.spec?.containers[0];
    assert.equal(container?.resources?.limits?.['nvidia.com/gpu'], '1');
    assert.deepEqual(container?.args, [
      'start',
      `--address=gpu-head-svc.${ns}.svc.cluster.local:6379`,
      '--block',
      `--memory=${32 * 2 ** 30}`,
      '--num-cpus=8',
      '--num-gpus=1',
    ]);
    assert.equal(worker.metadata?.labels?.['rayline.dev/group'], 'gpu');
  }
  await waitFor(
    async () => (await client.get(Services, ns, 'gpu-head-svc')) !== null,
    30_000,
    'head service',
  );
  const svc = await client.get<KubeObject & { spec?: { clusterIP?: string; ports?: { port: number }[] } }>(
    Services,
    ns,
    'gpu-head-svc',
  );
  assert.equal(svc?.spec?.clusterIP, 'None');
  assert.deepEqual(
    svc?.spec?.ports?.map((p) => p.port),
    [6379, 8265, 8000, 8080],
  );
  const secret = await client.get<KubeObject & { data?: Record<string, string> }>(Secrets, ns, 'gpu-token');
  assert.ok((secret?.data?.token?.length ?? 0) > 20);
  for (const resource of [ServiceAccounts, Roles, RoleBindings]) {
    assert.ok(await client.get(resource, ns, 'gpu-autoscaler'), `${resource.kind} gpu-autoscaler`);
  }
  const policy = await client.get<
    KubeObject & { spec?: { ingress?: { from?: unknown[]; ports?: { port: number }[] }[] } }
  >(NetworkPolicies, ns, 'gpu-dashboard');
  assert.deepEqual(policy?.spec?.ingress?.[0]?.from, [
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'rayline-system' } } },
  ]);
  assert.deepEqual(
    policy?.spec?.ingress?.[0]?.ports?.map((p) => p.port),
    [8265],
  );

  // The kubelet's part: pods run and become ready; the status follows.
  await markRunning(head, '10.0.1.1');
  for (const [i, w] of workers.entries()) await markRunning(w, `10.0.2.${i + 1}`);
  await waitFor(async () => (await getCluster('gpu')).status?.state === 'ready', 30_000, 'cluster gpu ready');
  const { status } = await getCluster('gpu');
  assert.equal(status?.readyWorkerReplicas, 2);
  assert.equal(status?.desiredWorkerReplicas, 2);
  assert.equal(status?.maxWorkerReplicas, 4);
  assert.equal(status?.desiredGPU, '2');
  assert.equal(status?.desiredCPU, '18');
  assert.equal(status?.head?.podIP, '10.0.1.1');
  assert.equal(status?.conditions?.find((c) => c.type === 'HeadPodReady')?.status, 'True');
  assert.equal(status?.conditions?.find((c) => c.type === 'RayClusterProvisioned')?.status, 'True');
  const columns = await env.kubectl([
    '--kubeconfig',
    env.kubeconfigPath,
    'get',
    'rayclusters',
    '-n',
    ns,
    'gpu',
    '--no-headers',
  ]);
  assert.match(columns.stdout, /^gpu\s+2\s+2\s+18\s+68Gi\s+2\s+ready\s+/);
});

test('with autoscaling, surplus workers stay until workersToDelete names them; exactly those pods go', async () => {
  const before = await waitForPods('gpu', 'worker', 2);
  await patchCluster('gpu', [{ op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: 1 }]);
  // Nothing is deleted on replicas alone: the operator must not pick a victim for the autoscaler.
  await waitFor(
    async () => (await getCluster('gpu')).status?.desiredWorkerReplicas === 1,
    30_000,
    'status with 1 desired worker',
  );
  assert.equal((await podsOf('gpu', 'worker')).length, 2);
  const victim = before[1]?.metadata?.name ?? '';
  await patchCluster('gpu', [
    { op: 'replace', path: '/spec/workerGroupSpecs/0/scaleStrategy', value: { workersToDelete: [victim] } },
  ]);
  const remaining = await waitForPods('gpu', 'worker', 1);
  assert.equal(remaining[0]?.metadata?.name, before[0]?.metadata?.name);
});

test('without autoscaling, scaling a group creates and deletes pods; failed pods are replaced', async () => {
  await client.create(
    RayClusters,
    rayCluster('cpu', { workerGroupSpecs: [gpuGroup({ groupName: 'cpu', replicas: 1 })] }),
  );
  await waitForPods('cpu', 'worker', 1);
  await patchCluster('cpu', [{ op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: 3 }]);
  const three = await waitForPods('cpu', 'worker', 3);
  await patchCluster('cpu', [{ op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: 2 }]);
  const two = await waitForPods('cpu', 'worker', 2);
  assert.ok(two.every((p) => three.some((q) => q.metadata?.uid === p.metadata?.uid)));

  const failed = two[0];
  assert.ok(failed);
  await client.patchStatus(Pods, ns, failed.metadata?.name ?? '', 'merge', { status: { phase: 'Failed' } });
  await waitFor(
    async () => {
      const pods = await podsOf('cpu', 'worker');
      return pods.length === 2 && !pods.some((p) => p.metadata?.uid === failed.metadata?.uid);
    },
    30_000,
    'the failed pod replaced',
  );
});

test('informers recover after the API server restarts, and no pod is created twice', async () => {
  await env.restartApiServer();
  await patchCluster('cpu', [{ op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: 4 }]);
  await waitForPods('cpu', 'worker', 4);
  await env.stopApiServer();
  await env.startApiServer();
  await patchCluster('cpu', [{ op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: 5 }]);
  await waitForPods('cpu', 'worker', 5);
  // Settled: a few more reconciles (requeues every 300 ms) add nothing.
  const metrics = async () => (await fetch(metricsUrl)).text();
  const reconciles = (text: string) =>
    [...text.matchAll(/^controller_runtime_reconcile_total\{[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  const start = reconciles(await metrics());
  await waitFor(async () => reconciles(await metrics()) >= start + 5, 30_000, '5 more reconciles');
  assert.equal((await podsOf('cpu', 'worker')).length, 5);
  assert.equal((await podsOf('cpu', 'head')).length, 1);
});

test('probes answer on the health port and metrics carry controller-runtime names per controller', async () => {
  assert.equal((await fetch(`${healthUrl}/healthz`)).status, 200);
  await waitFor(async () => (await fetch(`${healthUrl}/readyz`)).status === 200, 30_000, 'readyz');
  const text = await (await fetch(metricsUrl)).text();
  assert.match(
    text,
    /^controller_runtime_reconcile_total\{controller="raycluster",result="requeue_after"\} [1-9]/m,
  );
  assert.match(text, /^controller_runtime_reconcile_time_seconds_count\{controller="raycluster"\} [1-9]/m);
  assert.match(text, /^workqueue_depth\{name="raycluster"\} \d+/m);
  assert.match(text, /^rayline_operator_leader 1$/m);
});
