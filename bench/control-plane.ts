/**
 * Control-plane scale benchmark (not a test): the placement engine with 1,000 replicas of 50
 * deployments over 100 simulated nodes (70 CPU nodes, 30 with 8 GPUs), and the cost of building a
 * routing table snapshot for them. Goal from DESIGN.md / issue 4: under 10 ms per controller tick.
 *
 *   node_modules/.bin/node bench/control-plane.ts [--reps 200]
 *
 * Measured:
 * - full pass: one `schedule()` from an empty ledger placing all 1,000 replicas;
 * - steady tick: with all 1,000 running, release 10 replicas and schedule 10 new ones (what a tick
 *   does during a rolling update or after a few replicas died);
 * - routing snapshot: a Map of deployment -> replica ids and node addresses, serialized with
 *   JSON.stringify. A stand-in for publishing routing tables: the real push also writes the bytes
 *   to each proxy's connection, which this does not measure.
 */
import { parseArgs } from 'node:util';
import { ResourceLedger } from '../src/runtime/placement/ledger.ts';
import { schedule } from '../src/runtime/placement/scheduler.ts';
import type {
  ExistingReplica,
  NodeView,
  Placement,
  ReplicaRequest,
  ResourceSet,
} from '../src/runtime/placement/types.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '200' } } });
const reps = Math.max(50, Number(values.reps));
const warmup = 20;
const GiB = 2 ** 30;

const nodes: NodeView[] = Array.from({ length: 100 }, (_, i) => {
  const gpu = i % 10 < 3;
  const total: ResourceSet = gpu ? { CPU: 32, GPU: 8, memory: 256 * GiB } : { CPU: 32, memory: 128 * GiB };
  return {
    id: `node-${String(i).padStart(3, '0')}`,
    total,
    labels: {},
    gpuIds: gpu ? ['0', '1', '2', '3', '4', '5', '6', '7'] : [],
    alive: true,
  };
});
const addresses = new Map(nodes.map((n, i) => [n.id, `10.0.${i >> 8}.${i & 255}:6379`]));

/** 50 deployments of 20 replicas: 40 CPU (one with max 1 per node), 6 whole-GPU, 3 half-GPU, 1 STRICT_PACK 2-GPU. */
function request(deploymentIndex: number, serial: number): ReplicaRequest {
  const deployment = `app${deploymentIndex % 5}/Deployment${deploymentIndex}`;
  const replicaId = `${deployment}#${serial}`;
  if (deploymentIndex < 40) {
    const r: ReplicaRequest = { replicaId, deployment, resources: { CPU: 1, memory: 2 * GiB } };
    if (deploymentIndex === 0) r.maxReplicasPerNode = 1;
    return r;
  }
  if (deploymentIndex < 46) return { replicaId, deployment, resources: { CPU: 1, GPU: 1 } };
  if (deploymentIndex < 49) return { replicaId, deployment, resources: { CPU: 1, GPU: 0.5 } };
  const bundle = { CPU: 1, GPU: 1 };
  return { replicaId, deployment, resources: { CPU: 1 }, bundles: [bundle, bundle], strategy: 'STRICT_PACK' };
}

const allRequests: ReplicaRequest[] = [];
for (let d = 0; d < 50; d++) for (let s = 0; s < 20; s++) allRequests.push(request(d, s));

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function measure(name: string, setup: () => () => void): { name: string; median: number; p95: number } {
  const samples: number[] = [];
  for (let i = 0; i < warmup + reps; i++) {
    const work = setup();
    const start = performance.now();
    work();
    const elapsed = performance.now() - start;
    if (i >= warmup) samples.push(elapsed);
  }
  return { name, median: percentile(samples, 50), p95: percentile(samples, 95) };
}

// Full pass from empty.
let lastFull: Placement[] = [];
let lastPending = 0;
const full = measure('full pass: 1,000 replicas from empty', () => {
  const ledger = new ResourceLedger();
  return () => {
    const result = schedule({ nodes, ledger, existing: [], requests: allRequests });
    lastFull = result.placements;
    lastPending = result.pending.length;
  };
});

// Steady state: one cluster that keeps running, 10 replicas replaced per tick.
const ledger = new ResourceLedger();
const running = new Map<string, Placement>();
for (const p of schedule({ nodes, ledger, existing: [], requests: allRequests }).placements)
  running.set(p.replicaId, p);
let serial = 1000;
let seed = 42;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
let tickPending = 0;
const steady = measure('steady tick: 10 released + 10 new, 1,000 running', () => {
  const ids = [...running.keys()];
  const victims = new Set<string>();
  while (victims.size < 10) victims.add(ids[Math.floor(random() * ids.length)]);
  const requests = [...victims].map((id) => request(Number(/Deployment(\d+)#/.exec(id)![1]), serial++));
  for (const id of victims) running.delete(id);
  // The controller keeps this list up to date as replicas start and stop; building it is not the tick.
  const existing: ExistingReplica[] = [...running.values()].map((p) => ({
    replicaId: p.replicaId,
    deployment: p.deployment,
    nodeId: p.nodeId,
  }));
  return () => {
    for (const id of victims) ledger.release(id);
    const result = schedule({ nodes, ledger, existing, requests });
    for (const p of result.placements) running.set(p.replicaId, p);
    tickPending += result.pending.length;
  };
});

// Routing table snapshot.
let snapshotBytes = 0;
const routing = measure('routing snapshot: 1,000 replicas, JSON (stand-in)', () => () => {
  const table = new Map<string, { replicaId: string; nodeId: string; address: string }[]>();
  for (const p of running.values()) {
    let list = table.get(p.deployment);
    if (!list) {
      list = [];
      table.set(p.deployment, list);
    }
    list.push({ replicaId: p.replicaId, nodeId: p.nodeId, address: addresses.get(p.nodeId)! });
  }
  snapshotBytes = JSON.stringify(Object.fromEntries(table)).length;
});

const rows = [full, steady, routing];
const width = Math.max(...rows.map((r) => r.name.length));
const line = (cells: string[]) =>
  `${cells[0].padEnd(width)}  ${cells[1].padStart(10)}  ${cells[2].padStart(10)}`;
console.log(
  `control plane: ${nodes.length} nodes (30 with 8 GPUs), ${allRequests.length} replicas, 50 deployments`,
);
console.log(`node ${process.version}, ${reps} repetitions after ${warmup} warm-up`);
console.log('');
console.log(line(['measurement', 'median ms', 'p95 ms']));
for (const r of rows) console.log(line([r.name, r.median.toFixed(3), r.p95.toFixed(3)]));
console.log('');
console.log(
  `full pass placed ${lastFull.length}, pending ${lastPending}; steady ticks left ${tickPending} pending; ` +
    `snapshot ${snapshotBytes} bytes`,
);
const verdict = (ms: number) => `${ms.toFixed(3)} ms (${ms < 10 ? 'met' : 'MISSED'})`;
console.log(`goal under 10 ms: steady tick p95 ${verdict(steady.p95)}; full pass p95 ${verdict(full.p95)}`);
