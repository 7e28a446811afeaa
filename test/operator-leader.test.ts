/**
 * Two operators on one API server with leader election: only the leader reconciles, and when it
 * stops the other takes over within the lease and goes on from where the first left off.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeClient } from '../src/operator/kube/client.ts';
import { type KubeObject, Leases, Pods, RayClusters } from '../src/operator/kube/resources.ts';
import type { Operator } from '../src/operator/operator.ts';
import { waitFor } from './harness.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { createNamespace, testOperator } from './kube/operator.ts';

let env: KubeTestEnv;
let client: KubeClient;
const ns = 'leader-test';
const operators: Operator[] = [];

function startOperator(identity: string): Operator {
  const operator = testOperator(env, ns, {
    leaderElection: {
      namespace: ns,
      name: 'rayline-operator',
      identity,
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 500,
    },
  });
  operators.push(operator);
  return operator;
}

before(async () => {
  env = await startKubeTestEnv();
  client = new KubeClient(env.kubeConfig);
  await createNamespace(client, ns);
});

after(async () => {
  await Promise.all(operators.map((o) => o.stop()));
  await client?.close();
  await env?.stop();
});

async function workerCount(): Promise<number> {
  const { items } = await client.list(Pods, { namespace: ns, labelSelector: 'rayline.dev/node-type=worker' });
  return items.filter((p) => !p.metadata?.deletionTimestamp).length;
}

async function setReplicas(replicas: number): Promise<void> {
  await client.patch(RayClusters, ns, 'elect', 'json', [
    { op: 'replace', path: '/spec/workerGroupSpecs/0/replicas', value: replicas },
  ]);
}

test('one leader reconciles; after it stops, the other takes over within the lease', async () => {
  const a = startOperator('operator-a');
  await a.start();
  await waitFor(() => a.leading, 30_000, 'operator-a to lead');
  const b = startOperator('operator-b');
  const bMetrics = `${(await b.start()).metricsUrl}/metrics`;

  const template = { spec: { containers: [{ name: 'c', image: 'rayline/rayline:0.1.0' }] } };
  await client.create<KubeObject>(RayClusters, {
    apiVersion: 'rayline.dev/v1',
    kind: 'RayCluster',
    metadata: { name: 'elect', namespace: ns },
    spec: { headGroupSpec: { template }, workerGroupSpecs: [{ groupName: 'g', replicas: 2, template }] },
  } as KubeObject);
  await waitFor(async () => (await workerCount()) === 2, 30_000, '2 workers');
  assert.equal(b.leading, false);
  // The follower's caches are warm, but it has not reconciled anything.
  assert.doesNotMatch(await (await fetch(bMetrics)).text(), /^controller_runtime_reconcile_total\{/m);
  const lease = await client.get<KubeObject & { spec?: { holderIdentity?: string } }>(
    Leases,
    ns,
    'rayline-operator',
  );
  assert.equal(lease?.spec?.holderIdentity, 'operator-a');

  await a.stop();
  const stoppedAt = Date.now();
  await waitFor(() => b.leading, 10_000, 'operator-b to take over');
  // A released lease is taken at the next retry, well inside the 3 s lease.
  assert.ok(Date.now() - stoppedAt < 3_000, `took over after ${Date.now() - stoppedAt} ms`);
  await setReplicas(3);
  await waitFor(async () => (await workerCount()) === 3, 30_000, '3 workers after the takeover');
  assert.equal(await workerCount(), 3);
});
