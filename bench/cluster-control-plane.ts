/**
 * Control-plane scale benchmark with the real controller (not a test): a head's ServeController and
 * cluster table, 100 simulated worker nodes connected over the real cluster channel (each answers a
 * launch with "ready" at once, no processes), and one application of 50 deployments x 20 replicas.
 *
 *   node_modules/.bin/node bench/cluster-control-plane.ts [--reps 200]
 *
 * Measured:
 * - converge: from apply (after the app is built) to all 1,000 replicas RUNNING;
 * - steady tick: one reconcile of every deployment with nothing to change (what the 1 s safety-net
 *   tick costs);
 * - after 10 replicas are lost: the tick that places and launches their replacements, and (once
 *   they report ready over the channel) the tick that publishes the new routing table to all 100
 *   nodes (serialized and written to each node's socket).
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Channel } from '../src/runtime/cluster/channel.ts';
import type { ToHead, ToNode } from '../src/runtime/cluster/protocol.ts';
import { controlPlaneOnly } from '../src/runtime/cluster/test-support.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '200' } } });
const reps = Number(values.reps);
const root = fileURLToPath(new URL('..', import.meta.url));
const { cluster, controller, port } = await controlPlaneOnly({ baseDir: root, nodeTimeoutMs: 600_000 });
// Publishing runs inside whichever reconcile sees the change first: time it where it happens.
const publishMs: number[] = [];
const publishTable = cluster.publish.bind(cluster);
cluster.publish = (...args) => {
  const t = performance.now();
  publishTable(...args);
  publishMs.push(performance.now() - t);
};

/** A worker that launches nothing: every launch is ready at once, every stop exits at once. */
let routeBytes = 0;
let routeMessages = 0;
const workers: Channel<ToNode, ToHead>[] = [];
const simulated = new Map<string, Channel<ToNode, ToHead>>();
for (let i = 0; i < 100; i++) {
  const id = `node-${String(i).padStart(3, '0')}`;
  const socket = net.connect(port, '127.0.0.1');
  const channel = new Channel<ToNode, ToHead>(socket);
  workers.push(channel);
  socket.on('data', (d) => (routeBytes += d.length));
  channel.onMessage = (m) => {
    if (m.t === 'launch') {
      const rid = m.order.spec.replicaId;
      simulated.set(rid, channel);
      channel.send({
        t: 'ready',
        id: rid,
        address: `/sim/${rid}.sock`,
        tcpAddress: `10.0.${i}.1:${9000 + simulated.size}`,
        pid: 1,
      });
    } else if (m.t === 'stop' || m.t === 'kill') {
      simulated.delete(m.id);
      channel.send({ t: 'exit', id: m.id, code: 0, signal: null });
    } else if (m.t === 'routes') routeMessages++;
  };
  socket.once('connect', () =>
    channel.send({
      t: 'hello',
      token: '',
      node: { id, ip: `10.0.${i}.1`, resources: { CPU: 32, memory: 128 * 2 ** 30 }, gpuIds: [], labels: {} },
      replicas: [],
    }),
  );
}
await until(() => cluster.workers.size === 100);

const config = parseServeConfig({
  applications: [
    {
      name: 'bench',
      import_path: 'bench/fixtures/many-deployments.ts:app',
      runtime_env: { working_dir: root },
      deployments: Array.from({ length: 50 }, (_, i) => ({ name: `Leaf${i}`, num_replicas: 20 })),
    },
  ],
});
if (!config.ok) throw new Error(JSON.stringify(config.issues));
controller.apply(config.value);
const running = () =>
  Object.values(controller.applicationDetails().bench?.deployments ?? {}).reduce(
    (n, d) => n + d.replicas.filter((r) => r.state === 'RUNNING').length,
    0,
  );
await until(() => controller.applicationDetails().bench?.deployments.Leaf49 !== undefined);
const convergeStart = performance.now();
await until(() => running() === 1001);
const convergeMs = performance.now() - convergeStart;

const steady: number[] = [];
for (let r = 0; r < reps; r++) {
  const t = performance.now();
  controller.tick();
  steady.push(performance.now() - t);
}

const place: number[] = [];
const publish: number[] = [];
const bytesPerPublish: number[] = [];
for (let r = 0; r < Math.min(reps, 50); r++) {
  const victims = [...simulated.entries()].slice(0, 10);
  for (const [rid, channel] of victims) {
    simulated.delete(rid);
    channel.send({ t: 'exit', id: rid, code: null, signal: 'SIGKILL' });
  }
  await until(() => running() === 991);
  const before = routeMessages;
  const bytesBefore = routeBytes;
  const t = performance.now();
  controller.tick(); // places and launches the 10 replacements
  place.push(performance.now() - t);
  const published = publishMs.length;
  await until(() => running() === 1001 && publishMs.length > published, 0);
  publish.push(publishMs[publishMs.length - 1]);
  await until(() => routeMessages >= before + 100, 0);
  bytesPerPublish.push((routeBytes - bytesBefore) / 100);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)];
console.log(
  `converge 1,000 replicas on 100 nodes (launch and ready over the channel): ${convergeMs.toFixed(0)} ms`,
);
console.log(
  `steady tick (nothing to do): median ${median(steady).toFixed(2)} ms, p95 ${p95(steady).toFixed(2)} ms`,
);
console.log(
  `tick placing and launching 10 replacements: median ${median(place).toFixed(2)} ms, p95 ${p95(place).toFixed(2)} ms`,
);
console.log(
  `publishing the new table to 100 nodes (serialize, write each socket): median ${median(publish).toFixed(2)} ms, p95 ${p95(publish).toFixed(2)} ms, ${(median(bytesPerPublish) / 1024).toFixed(0)} KiB per node`,
);
for (const w of workers) w.close();
cluster.close();
process.exit(0);

async function until(check: () => boolean, pollMs = 5): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('benchmark setup timed out');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
