/**
 * Operator latency against a local kube-apiserver (not part of the tests): from `kubectl apply` of a
 * RayCluster or RayService to all its pods created, and of a RayService to Ready with a real local
 * head. The benchmark plays the kubelet, marking each pod running and ready as soon as it appears,
 * so the Ready figure is the operator's and the head's share. Medians of several runs.
 *
 *   node bench/operator.ts [--runs 7]
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { KubeClient } from '../src/operator/kube/client.ts';
import { type KubeObject, Namespaces, Pods, RayServices } from '../src/operator/kube/resources.ts';
import { Operator } from '../src/operator/operator.ts';
import type { RayService } from '../src/schema/rayservice.ts';
import { startTestHead, type TestHead } from '../test/harness.ts';
import { startKubeTestEnv } from '../test/kube/env.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(values.runs);
const ns = 'bench';

const env = await startKubeTestEnv();
const client = new KubeClient(env.kubeConfig);
await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
const heads = new Map<string, TestHead>();
const head = await startTestHead();
const operator = new Operator({
  kubeConfig: env.kubeConfig,
  log: pino({ level: 'silent' }),
  namespaces: [ns],
  host: '127.0.0.1',
  metricsPort: 0,
  healthPort: 0,
  busyRequeueMs: 200,
  headAddress: (cluster) => (heads.get(cluster.metadata.name ?? '') ?? head).rest.address,
});
await operator.start();

const template = { spec: { containers: [{ name: 'rayline', image: 'rayline/rayline:0.1.0' }] } };
const clusterSpec = {
  headGroupSpec: { template },
  workerGroupSpecs: [{ groupName: 'cpu', replicas: 4, template }],
};
const serveConfig = `applications:
  - name: hello
    route_prefix: /hello
    import_path: ../../examples/hello/app.ts:app
`;

/** Marks every new pod of the namespace running and ready, as a kubelet would. */
async function playKubelet(signal: AbortSignal): Promise<void> {
  const seen = new Set<string>();
  while (!signal.aborted) {
    const { items } = await client.list(Pods, { namespace: ns });
    for (const pod of items) {
      const name = pod.metadata?.name ?? '';
      if (seen.has(name)) continue;
      seen.add(name);
      await client.patchStatus(Pods, ns, name, 'merge', {
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
      });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function until(check: () => Promise<boolean>): Promise<number> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
  return performance.now();
}

async function podCount(selector: string): Promise<number> {
  return (await client.list(Pods, { namespace: ns, labelSelector: selector })).items.length;
}

function apply(manifest: object): Promise<void> {
  return env
    .kubectl(['--kubeconfig', env.kubeconfigPath, 'apply', '-f', '-'], { input: JSON.stringify(manifest) })
    .then((r) => {
      if (r.code !== 0) throw new Error(r.stderr);
    });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const clusterPods: number[] = [];
const servicePods: number[] = [];
const serviceReady: number[] = [];
const kubelet = new AbortController();
const kubeletLoop = playKubelet(kubelet.signal);

for (let i = 0; i < runs; i++) {
  let start = performance.now();
  await apply({
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    metadata: { name: `rc-${i}`, namespace: ns },
    spec: clusterSpec,
  });
  clusterPods.push((await until(async () => (await podCount(`rayline.dev/cluster=rc-${i}`)) === 5)) - start);

  start = performance.now();
  await apply({
    apiVersion: 'rayline.dev/v1',
    kind: 'RayService',
    metadata: { name: `rs-${i}`, namespace: ns },
    spec: { serveConfigV2: serveConfig, rayClusterConfig: clusterSpec },
  });
  const clusterOf = async () => {
    const rs = await client.get<RayService & KubeObject>(RayServices, ns, `rs-${i}`);
    return (
      rs?.status?.activeServiceStatus?.rayClusterName ?? rs?.status?.pendingServiceStatus?.rayClusterName
    );
  };
  const podsAt = await until(async () => {
    const cluster = await clusterOf();
    return cluster !== undefined && (await podCount(`rayline.dev/cluster=${cluster}`)) === 5;
  });
  servicePods.push(podsAt - start);
  const readyAt = await until(async () => {
    const rs = await client.get<RayService & KubeObject>(RayServices, ns, `rs-${i}`);
    return rs?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
  serviceReady.push(readyAt - start);
}

kubelet.abort();
await kubeletLoop;
const row = (what: string, xs: number[]) =>
  console.log(
    `${what.padEnd(44)} median ${median(xs).toFixed(0).padStart(5)} ms   (${xs.map((x) => x.toFixed(0)).join(', ')})`,
  );
console.log(`operator latency, ${runs} runs each, 1 head + 4 workers per cluster`);
row('RayCluster: kubectl apply → all pods created', clusterPods);
row('RayService: kubectl apply → all pods created', servicePods);
row('RayService: kubectl apply → Ready (local head)', serviceReady);
await operator.stop();
await head.stop();
await client.close();
await env.stop();
