/**
 * The cluster runtime end to end: a head and workers as real `rayline start` processes on one
 * machine, replicas placed by resources, requests through every node's proxy, and nodes killed -9.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { NodeProcess, repoRoot, TestCluster, TOKEN, waitFor } from './cluster-harness.ts';
import { runningAtKill } from './kill-records.ts';
import { ClosedLoopLoad } from './load.ts';

interface Answer {
  replica: string;
  node: string;
  gpus: string;
}

const app = (name: string, deployment: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  route_prefix: `/${name}`,
  import_path: 'test/fixtures/cluster-app.ts:app',
  runtime_env: { working_dir: repoRoot },
  deployments: [{ name: 'Where', ...deployment }],
  ...extra,
});

async function get(url: string): Promise<Answer> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as Answer;
}

/** Distinct answers from enough requests to have met every replica of a 2-replica deployment. */
async function replicasBehind(url: string, expected: number): Promise<Map<string, Answer>> {
  const seen = new Map<string, Answer>();
  await waitFor(
    async () => {
      const a = await get(url);
      seen.set(a.replica, a);
      return seen.size >= expected;
    },
    30_000,
    `${expected} replicas behind ${url}`,
  );
  return seen;
}

async function waitRunning(cluster: TestCluster, names: string[], timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const d = await cluster.details();
      return names.every((n) => d.applications[n]?.status === 'RUNNING') ? d : undefined;
    },
    timeoutMs,
    `${names.join(', ')} RUNNING`,
  );
}

describe('a head and two workers: placement by resources and GPUs', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start([
      { id: 'gpu-node', cpus: 8, gpus: 6 },
      { id: 'cpu-node', cpus: 8 },
    ]);
  });
  after(() => cluster.stop());

  test('GPU replicas land only where GPUs are, each process sees exactly its devices', async () => {
    const config: ServeConfigInput = {
      applications: [
        app('whole', { num_replicas: 2, ray_actor_options: { num_gpus: 1 } }),
        app('half', { num_replicas: 2, ray_actor_options: { num_gpus: 0.5 } }),
        app('packed', {
          num_replicas: 1,
          placement_group_bundles: [{ CPU: 1, GPU: 1 }, { GPU: 1 }],
          placement_group_strategy: 'STRICT_PACK',
        }),
        app('toobig', { num_replicas: 1, ray_actor_options: { num_gpus: 8 } }),
      ],
    };
    await cluster.deploy(config);
    await waitRunning(cluster, ['whole', 'half', 'packed']).catch((e) => {
      throw new Error(`${e.message}\n${cluster.logs()}`);
    });
    const whole = [...(await replicasBehind(`${cluster.headHttp}/whole`, 2)).values()];
    const half = [...(await replicasBehind(`${cluster.headHttp}/half`, 2)).values()];
    const [packed] = (await replicasBehind(`${cluster.headHttp}/packed`, 1)).values();
    for (const a of [...whole, ...half, packed]) assert.equal(a.node, 'gpu-node');
    // Whole GPUs: one device each, never the same one.
    assert.equal(whole[0].gpus.split(',').length, 1);
    assert.notEqual(whole[0].gpus, whole[1].gpus);
    // Two halves share one device.
    assert.equal(half[0].gpus, half[1].gpus);
    assert.equal(half[0].gpus.split(',').length, 1);
    // STRICT_PACK: both bundles on one node, the process sees both devices.
    const packedIds = packed.gpus.split(',');
    assert.equal(packedIds.length, 2);
    // No device is handed out whole twice.
    const wholeIds = [...whole.map((a) => a.gpus), ...packedIds];
    assert.equal(new Set(wholeIds).size, wholeIds.length);
    assert.ok(!wholeIds.includes(half[0].gpus), 'the shared device is not also handed out whole');
    // A replica that fits nowhere waits, saying for what.
    const toobig = (await cluster.details()).applications.toobig;
    assert.equal(toobig.status, 'DEPLOYING');
    assert.match(toobig.deployments.Where.message, /waiting for resources/);
    assert.match(toobig.deployments.Where.message, /GPU/);
  });

  test("requests entering any node's proxy reach replicas on other nodes", async () => {
    await cluster.deploy({ applications: [app('cpu', { num_replicas: 2 })] });
    await waitRunning(cluster, ['cpu']);
    const d = await cluster.details();
    const nodes = new Set(d.applications.cpu.deployments.Where.replicas.map((r) => r.node_id));
    // Spread across both workers; the head offers no CPU.
    assert.deepEqual([...nodes].sort(), ['cpu-node', 'gpu-node']);
    for (const entry of [cluster.headHttp, ...cluster.workerHttp.values()]) {
      const seen = await replicasBehind(`${entry}/cpu`, 2);
      assert.deepEqual([...new Set([...seen.values()].map((a) => a.node))].sort(), ['cpu-node', 'gpu-node']);
    }
    assert.deepEqual(Object.keys(d.proxies).sort(), ['cpu-node', 'gpu-node', 'head']);
    for (const p of Object.values(d.proxies)) assert.equal(p.status, 'HEALTHY');
    // A worker pod's probes and Prometheus ask its metrics port: health, and its own replicas' metrics.
    for (const [id, metrics] of cluster.workerMetrics) {
      assert.equal((await fetch(`${metrics}/-/healthz`)).status, 200);
      const text = await (await fetch(`${metrics}/metrics`)).text();
      assert.match(text, /ray_serve_deployment_request_counter_total\{[^}]*application="cpu"/, id);
    }
  });
  test('malformed or unauthenticated bytes on the cluster port cost the peer its connection, not the head', async () => {
    const lines = [
      'null',
      '42',
      '{"t":"hello","token":123}',
      '{"t":"hello"}',
      '{"t":"ready","id":"x"}',
      'not json',
    ];
    for (const line of [...lines, 'x'.repeat(9 * 1024 * 1024)]) {
      const socket = net.connect(cluster.clusterPort, '127.0.0.1');
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => {});
      socket.write(`${line}\n`);
      await closed;
    }
    assert.ok(cluster.head.alive, `the head died:\n${cluster.logs()}`);
    assert.deepEqual(Object.keys((await cluster.details()).proxies).sort(), ['cpu-node', 'gpu-node', 'head']);
  });

  test('a node without the cluster token is refused; HeadOnly keeps applications off worker proxies', async () => {
    const intruder = new NodeProcess(
      'intruder',
      [
        '--address',
        `127.0.0.1:${cluster.clusterPort}`,
        '--node-id',
        'intruder',
        '--proxy-port',
        '0',
        '--metrics-port',
        '0',
      ],
      { ...process.env, RAYLINE_API_TOKEN: 'wrong-token' },
    );
    const code = await new Promise<number | null>((resolve) => intruder.child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(intruder.log, /refused this node/);
    assert.equal((await cluster.details()).proxies.intruder, undefined);

    // A second live node with an existing id (with the token) is refused, and keeps asking; the
    // holder keeps its id and its replicas.
    const before = (await cluster.details()).applications.cpu.deployments.Where.replicas;
    const twin = new NodeProcess(
      'twin',
      [
        '--address',
        `127.0.0.1:${cluster.clusterPort}`,
        '--node-id',
        'cpu-node',
        '--proxy-port',
        '0',
        '--metrics-port',
        '0',
      ],
      { ...process.env, RAYLINE_API_TOKEN: TOKEN },
    );
    await waitFor(() => /refused this node for now/.test(twin.log), 30_000, 'the twin to be refused');
    assert.ok(twin.alive, 'a refusal for a held id is not final');
    await twin.kill('SIGTERM');
    const after = (await cluster.details()).applications.cpu.deployments.Where.replicas;
    assert.deepEqual(
      after.map((r) => [r.replica_id, r.state, r.node_id]),
      before.map((r) => [r.replica_id, r.state, r.node_id]),
    );

    await cluster.deploy({ proxy_location: 'HeadOnly', applications: [app('cpu', { num_replicas: 2 })] });
    await waitFor(
      async () => (await fetch(`${cluster.workerHttp.get('cpu-node')}/cpu`)).status === 404,
      30_000,
      'worker proxies to drop the application routes',
    );
    assert.equal((await fetch(`${cluster.headHttp}/cpu`)).status, 200);
    assert.deepEqual(Object.keys((await cluster.details()).proxies), ['head']);
  });
});

describe('losing a worker under load', () => {
  let cluster: TestCluster;
  let recordDir: string;
  let load: ClosedLoopLoad | undefined;
  before(async () => {
    recordDir = mkdtempSync(join(tmpdir(), 'rl-records-'));
    cluster = await TestCluster.start([
      { id: 'w1', cpus: 4 },
      { id: 'w2', cpus: 4 },
    ]);
  });
  after(async () => {
    await load?.stop();
    await cluster.stop();
    rmSync(recordDir, { recursive: true, force: true });
  });

  test('kill -9 a worker: its replicas come back elsewhere, only requests running there fail', async () => {
    await cluster.deploy({
      applications: [
        {
          name: 'chaos',
          route_prefix: '/chaos',
          import_path: 'test/fixtures/lifecycle.ts:app',
          runtime_env: { working_dir: repoRoot, env_vars: { RECORD_DIR: recordDir } },
          deployments: [{ name: 'Sleeper', num_replicas: 4 }],
        },
      ],
    });
    const before = await waitRunning(cluster, ['chaos']);
    const onW1 = before.applications.chaos.deployments.Sleeper.replicas.filter((r) => r.node_id === 'w1');
    assert.equal(onW1.length, 2, 'replicas spread over both workers');
    load = new ClosedLoopLoad(`${cluster.headHttp}/chaos?ms=50`, 8);
    await waitFor(() => load!.result.ok > 50, 30_000, 'load to flow');
    const killedAt = Date.now();
    await cluster.workers.get('w1')!.kill();
    const after = await waitFor(
      async () => {
        const d = await cluster.details();
        const replicas = d.applications.chaos.deployments.Sleeper.replicas;
        const running = replicas.filter((r) => r.state === 'RUNNING');
        return running.length === 4 && running.every((r) => r.node_id === 'w2') ? d : undefined;
      },
      60_000,
      'the lost replicas to run again on w2',
    );
    const okBefore = load.result.ok;
    await waitFor(() => load!.result.ok > okBefore + 50, 30_000, 'load to flow after the loss');
    const result = await load.stop();
    const runningAtDeath = runningAtKill(
      recordDir,
      onW1.map((r) => ({ id: r.replica_id, atMs: killedAt })),
    );
    const notRunning = result.failed.filter((f) => !runningAtDeath.has(f.id));
    assert.deepEqual(
      notRunning.map((f) => `${f.id} ${f.status} ${f.body}`),
      [],
      'failed although not running on the lost worker',
    );
    assert.ok(result.ok > 100);
    const ids = after.applications.chaos.deployments.Sleeper.replicas.map((r) => r.replica_id);
    for (const r of onW1) assert.ok(!ids.includes(r.replica_id));
  });
});

describe('losing the head under load', () => {
  let cluster: TestCluster;
  let load: ClosedLoopLoad | undefined;
  before(async () => {
    cluster = await TestCluster.start([
      { id: 'w1', cpus: 4 },
      { id: 'w2', cpus: 4 },
    ]);
  });
  after(async () => {
    await load?.stop();
    await cluster.stop();
  });

  test('kill -9 and restart the head: workers keep serving, the restarted head adopts their replicas', async () => {
    await cluster.deploy({ applications: [app('steady', { num_replicas: 3 })] });
    const before = await waitRunning(cluster, ['steady']);
    const ids = before.applications.steady.deployments.Where.replicas.map((r) => r.replica_id).sort();
    load = new ClosedLoopLoad(`${cluster.workerHttp.get('w1')}/steady?ms=20`, 4);
    await waitFor(() => load!.result.ok > 50, 30_000, 'load to flow');
    await cluster.head.kill();
    const okAtKill = load.result.ok;
    await waitFor(() => load!.result.ok > okAtKill + 50, 30_000, 'requests served while the head is away');
    cluster.head.restart();
    const after = await waitFor(
      async () => {
        const d = await cluster.details();
        const replicas = d.applications.steady?.deployments.Where?.replicas ?? [];
        return d.applications.steady?.status === 'RUNNING' && replicas.length === 3 ? d : undefined;
      },
      60_000,
      'the restarted head to report the application RUNNING',
    ).catch((e) => {
      throw new Error(`${e.message}\n${cluster.logs()}`);
    });
    const okAtRestart = load.result.ok;
    await waitFor(() => load!.result.ok > okAtRestart + 50, 30_000, 'requests served after the restart');
    const result = await load.stop();
    assert.deepEqual(result.failed, [], 'no request failed');
    assert.deepEqual(
      after.applications.steady.deployments.Where.replicas.map((r) => r.replica_id).sort(),
      ids,
      'the same replicas, adopted rather than restarted',
    );
  });
});

describe('the local cluster autoscaler', () => {
  let cluster: TestCluster;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rl-autoscaling-'));
    const config = join(dir, 'cluster.yaml');
    writeFileSync(
      config,
      [
        'autoscalerOptions: {idleTimeoutSeconds: 2}',
        'workerGroupSpecs:',
        '  - {groupName: gpu, minReplicas: 0, maxReplicas: 2, resources: {CPU: 2, GPU: 1}}',
        '  - {groupName: cpu, minReplicas: 1, maxReplicas: 1, resources: {CPU: 1}}',
      ].join('\n'),
    );
    cluster = await TestCluster.start([], { headArgs: ['--autoscaling-config', config] });
  });
  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const workersOf = async (group: string) =>
    Object.keys((await cluster.details()).proxies).filter((id) => id.startsWith(`${group}-`));

  test('unplaceable GPU replicas start GPU workers up to max; idle ones stop after the timeout, min stays', async () => {
    // The cpu group's minimum starts on its own.
    await waitFor(async () => (await workersOf('cpu')).length === 1, 60_000, 'the cpu group minimum').catch(
      (e) => {
        throw new Error(`${e.message}\n${cluster.logs()}`);
      },
    );
    await cluster.deploy({
      applications: [app('gpu', { num_replicas: 3, ray_actor_options: { num_gpus: 1 } })],
    });
    await waitFor(
      async () => {
        const d = await cluster.details();
        const running = d.applications.gpu?.deployments.Where?.replicas.filter((r) => r.state === 'RUNNING');
        return running?.length === 2;
      },
      90_000,
      'two GPU workers started and their replicas running',
    ).catch((e) => {
      throw new Error(`${e.message}\n${cluster.logs()}`);
    });
    const gpu = (await cluster.details()).applications.gpu;
    const gpuNodes = new Set(gpu.deployments.Where.replicas.map((r) => r.node_id));
    assert.equal(gpuNodes.size, 2, 'one replica on each GPU worker');
    for (const node of gpuNodes) assert.match(node, /^gpu-/);
    assert.deepEqual((await workersOf('gpu')).sort(), [...gpuNodes].sort(), 'never beyond maxReplicas');
    assert.match(gpu.deployments.Where.message, /1 replica waiting for resources/);
    await cluster.deploy({ applications: [] });
    await waitFor(async () => (await workersOf('gpu')).length === 0, 60_000, 'idle GPU workers to stop');
    assert.equal((await workersOf('cpu')).length, 1, 'the cpu group keeps its minimum');
  });
});
