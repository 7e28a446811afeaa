/**
 * The head's side of a worker that loses its connection at the wrong moment, with a scripted worker
 * on the real cluster channel: a `ready` or a `stop` lost in between is recovered when the worker
 * reconnects and reports what it runs.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Channel } from '../src/runtime/cluster/channel.ts';
import type { HeadCluster } from '../src/runtime/cluster/head-cluster.ts';
import type { ReplicaLaunchOrder, ReplicaReport, ToHead, ToNode } from '../src/runtime/cluster/protocol.ts';
import { controlPlaneOnly } from '../src/runtime/cluster/test-support.ts';
import type { ServeController } from '../src/runtime/controller/controller.ts';
import { parseServeConfig, type ServeConfigInput } from '../src/schema/serve-config.ts';
import { repoRoot, waitFor } from './cluster-harness.ts';

let cluster: HeadCluster;
let controller: ServeController;
let port: number;

before(async () => {
  ({ cluster, controller, port } = await controlPlaneOnly({ baseDir: repoRoot, nodeTimeoutMs: 60_000 }));
});

after(async () => {
  await controller.shutdown();
  cluster.close();
});

/** A worker that does only what the test says: it records what it receives. */
class ScriptedWorker {
  channel!: Channel<ToNode, ToHead>;
  readonly received: ToNode[] = [];
  async connect(replicas: ReplicaReport[]): Promise<void> {
    const socket = net.connect(port, '127.0.0.1');
    this.channel = new Channel<ToNode, ToHead>(socket);
    this.channel.onMessage = (m) => this.received.push(m);
    await new Promise((resolve) => socket.once('connect', resolve));
    this.channel.send({
      t: 'hello',
      token: '',
      node: { id: 'w1', ip: '127.0.0.1', resources: { CPU: 4 }, gpuIds: [], labels: {} },
      replicas,
    });
    await waitFor(() => this.received.some((m) => m.t === 'welcome'), 10_000, 'welcome');
  }
  /** The connection breaks (the head sees it close). */
  async drop(): Promise<void> {
    const closed = new Promise((resolve) => this.channel.socket.once('close', resolve));
    this.channel.socket.destroy();
    await closed;
    this.received.length = 0;
  }
  of<T extends ToNode['t']>(t: T): Extract<ToNode, { t: T }>[] {
    return this.received.filter((m): m is Extract<ToNode, { t: T }> => m.t === t);
  }
}

const config = (replicas: number): ServeConfigInput => ({
  applications: [
    {
      name: 'a',
      route_prefix: '/a',
      import_path: 'test/fixtures/cluster-app.ts:app',
      runtime_env: { working_dir: repoRoot },
      deployments: [{ name: 'Where', num_replicas: replicas }],
    },
  ],
});
const apply = (input: ServeConfigInput) => {
  const parsed = parseServeConfig(input);
  assert.ok(parsed.ok);
  controller.apply(parsed.value);
};
const where = () => controller.applicationDetails().a?.deployments.Where;
const running = (order: ReplicaLaunchOrder, tcpPort: number): ReplicaReport => ({
  ...order,
  spec: { ...order.spec, address: `/sim/${order.spec.replicaId}.sock` },
  state: 'RUNNING',
  pid: 4242,
  tcpAddress: `127.0.0.1:${tcpPort}`,
});

test("a replica whose 'ready' was lost in a reconnect completes its start from the worker's report", async () => {
  const worker = new ScriptedWorker();
  await worker.connect([]);
  apply(config(1));
  await waitFor(() => worker.of('launch').length === 1, 30_000, 'the launch');
  const [{ order }] = worker.of('launch');
  // The replica becomes ready while the connection is down: the 'ready' never reaches the head.
  await worker.drop();
  await worker.connect([running(order, 40001)]);
  await waitFor(() => where()?.status === 'HEALTHY', 30_000, 'the deployment to be HEALTHY');
  assert.deepEqual(
    where()!.replicas.map((r) => [r.replica_id, r.state, r.node_id]),
    [[order.spec.replicaId, 'RUNNING', 'w1']],
  );
  assert.equal(worker.of('launch').length, 0, 'nothing launched twice');

  // The head stops it; the stop is lost with the connection; the worker comes back still running it.
  apply(config(0));
  await waitFor(() => worker.of('stop').length === 1, 30_000, 'the stop');
  await worker.drop();
  await worker.connect([running(order, 40001)]);
  await waitFor(() => worker.of('stop').length === 1, 30_000, 'the stop asked again');
  worker.channel.send({ t: 'exit', id: order.spec.replicaId, code: 0, signal: null });
  await waitFor(() => (where()?.replicas.length ?? 0) === 0, 30_000, 'the replica to be gone');
  assert.equal(controller.nodeUsage('w1').replicas, 0, 'its resources are free again');
});
