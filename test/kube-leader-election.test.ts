/**
 * Leader election against a real kube-apiserver: one leader of two, graceful hand-over, takeover
 * after a leader vanishes, and a leader cut off from the API server (by a partition, or by the
 * server stopping) giving up before anyone else can take over. Lease 3 s, renew 2 s, retry 0.5 s.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { KubeClient } from '../src/operator/kube/client.ts';
import {
  LeaderElector,
  type LeaderElectorOptions,
  type Lease,
} from '../src/operator/kube/leader-election.ts';
import { Leases } from '../src/operator/kube/resources.ts';
import { type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';
import { kubeConfigVia, TcpProxy, waitFor } from './kube/support.ts';

const timing = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const namespace = 'default';

let env: KubeTestEnv;
let client: KubeClient;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  env = await startKubeTestEnv({ installCrds: false });
  client = new KubeClient(env.kubeConfig);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

after(async () => {
  await client?.close();
  await env?.stop();
});

let leaseCount = 0;

interface Candidate {
  elector: LeaderElector;
  state: { leading: boolean; startedAt: number; stoppedAt: number; stops: number; signal?: AbortSignal };
  stop: AbortController;
  done: Promise<void>;
  proxy: TcpProxy;
}

/** A candidate with its own connection (through a proxy that can partition it). */
async function candidate(
  lease: string,
  identity: string,
  extra: Partial<LeaderElectorOptions> = {},
): Promise<Candidate> {
  const proxy = new TcpProxy(new URL(env.server));
  await proxy.start();
  const own = new KubeClient(await kubeConfigVia(env.kubeconfigPath, env.server, proxy.port), {
    requestTimeoutMs: 5000,
  });
  const state: Candidate['state'] = { leading: false, startedAt: 0, stoppedAt: 0, stops: 0 };
  const elector = new LeaderElector({
    client: own,
    namespace,
    name: lease,
    identity,
    ...timing,
    onStartedLeading: (signal) => {
      state.leading = true;
      state.startedAt = performance.now();
      state.signal = signal;
    },
    onStoppedLeading: () => {
      state.leading = false;
      state.stoppedAt = performance.now();
      state.stops++;
    },
    ...extra,
  });
  const stop = new AbortController();
  const done = elector.run(stop.signal);
  cleanups.push(async () => {
    stop.abort();
    await done;
    await own.close();
    await proxy.close();
  });
  return { elector, state, stop, done, proxy };
}

async function holder(lease: string): Promise<string> {
  return (await client.get<Lease>(Leases, namespace, lease))?.spec?.holderIdentity ?? '';
}

test('of two candidates exactly one leads, and it holds the Lease', async () => {
  const lease = `lease-${++leaseCount}`;
  const a = await candidate(lease, 'a');
  const b = await candidate(lease, 'b');
  await waitFor('a leader', () => a.state.leading || b.state.leading);
  const [leader, follower] = a.state.leading ? [a, b] : [b, a];
  const deadline = performance.now() + timing.leaseDurationMs + timing.retryPeriodMs;
  while (performance.now() < deadline) {
    assert.equal(leader.state.leading && !follower.state.leading, true, 'exactly one leads');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(follower.state.startedAt, 0, 'the follower never led');
  assert.equal(await holder(lease), leader.elector.identity);
});

test('a leader stopping gracefully hands over at once', async () => {
  const lease = `lease-${++leaseCount}`;
  const a = await candidate(lease, 'a');
  await waitFor('a leads', () => a.state.leading);
  const b = await candidate(lease, 'b');
  a.stop.abort();
  await a.done;
  assert.equal(a.state.signal?.aborted, true);
  const took = await waitFor('b leads', () => b.state.leading);
  assert.ok(took < timing.leaseDurationMs, `released lease taken after ${took} ms`);
  assert.equal(await holder(lease), 'b');
});

test('a leader that stops renewing without releasing is replaced within the lease duration', async () => {
  const lease = `lease-${++leaseCount}`;
  const a = await candidate(lease, 'a', { releaseOnStop: false });
  await waitFor('a leads', () => a.state.leading);
  const b = await candidate(lease, 'b');
  a.stop.abort();
  await a.done;
  const gone = performance.now();
  await waitFor('b leads', () => b.state.leading);
  const took = performance.now() - gone;
  // The lease runs from a's last renewal (at most one retry period before it stopped).
  assert.ok(took >= timing.leaseDurationMs - timing.retryPeriodMs - 1000, `took over too early: ${took} ms`);
  assert.ok(
    took <= timing.leaseDurationMs + 2 * timing.retryPeriodMs + 1500,
    `took over too late: ${took} ms`,
  );
});

test('a partitioned leader stops before the other starts', async () => {
  const lease = `lease-${++leaseCount}`;
  const a = await candidate(lease, 'a');
  await waitFor('a leads', () => a.state.leading);
  const b = await candidate(lease, 'b');
  a.proxy.cut();
  const cut = performance.now();
  await waitFor('a stops', () => !a.state.leading);
  assert.ok(
    a.state.stoppedAt - cut <= timing.renewDeadlineMs + 500,
    `stopped ${a.state.stoppedAt - cut} ms after`,
  );
  assert.equal(a.state.signal?.aborted, true);
  await waitFor('b leads', () => b.state.leading);
  assert.ok(b.state.startedAt > a.state.stoppedAt, 'never two leaders at once');
  await a.done;
});

test('a leader whose API server is gone past the renew deadline stops leading', async () => {
  const lease = `lease-${++leaseCount}`;
  const a = await candidate(lease, 'a');
  await waitFor('a leads', () => a.state.leading);
  await env.stopApiServer();
  const down = performance.now();
  try {
    await waitFor('a stops', () => !a.state.leading);
    assert.ok(
      a.state.stoppedAt - down <= timing.renewDeadlineMs + 500,
      `stopped ${a.state.stoppedAt - down} ms after`,
    );
    assert.equal(a.state.signal?.aborted, true);
    assert.equal(a.state.stops, 1);
    await a.done;
  } finally {
    await env.startApiServer();
  }
  // Campaigning again once the server is back, it leads again.
  const again = new AbortController();
  const state = { leading: false };
  const elector = new LeaderElector({
    client,
    namespace,
    name: lease,
    identity: 'a',
    ...timing,
    onStartedLeading: () => {
      state.leading = true;
    },
  });
  const done = elector.run(again.signal);
  cleanups.push(async () => {
    again.abort();
    await done;
  });
  await waitFor('a leads again', () => state.leading);
});
