/** Rolling updates, graceful stops and replicas killed under load, against real replica processes. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { json, startTestHead, type TestHead, waitFor } from './harness.ts';
import { runningAtKill } from './kill-records.ts';
import { ClosedLoopLoad } from './load.ts';

let t: TestHead;
const recordDir = mkdtempSync(join(tmpdir(), 'rayline-records-'));

before(async () => {
  t = await startTestHead();
});

after(async () => {
  await t.stop();
  rmSync(recordDir, { recursive: true, force: true });
});

const sleeper = (app: string) => t.head.controller.applicationDetails()[app]?.deployments.Sleeper;
const alive = (app: string) => sleeper(app)?.replicas.filter((r) => r.state !== 'STOPPING') ?? [];
/** What a replica wrote to its record file so far ('' before its first request). */
const recorded = (replicaId: string) => {
  try {
    return readFileSync(join(recordDir, `${replicaId}.log`), 'utf8');
  } catch {
    return '';
  }
};
const runningCount = (app: string) => alive(app).filter((r) => r.state === 'RUNNING').length;

function sleeperApp(
  name: string,
  env: Record<string, string>,
  options: Record<string, unknown>,
): ServeConfigInput {
  return {
    applications: [
      {
        name,
        route_prefix: `/${name}`,
        import_path: 'lifecycle.ts:app',
        runtime_env: { env_vars: { RECORD_DIR: recordDir, ...env } },
        deployments: [{ name: 'Sleeper', ...options }],
      },
    ],
  };
}

describe('rolling update', () => {
  test('under steady load: no failed request, never more than target + 20% replicas, a broken version leaves the old one serving', async () => {
    await t.deploy(sleeperApp('roll', { VERSION: 'v1' }, { num_replicas: 5 }));
    await t.waitForApp('roll', ['RUNNING']);
    const load = new ClosedLoopLoad(`${t.http}/roll?ms=50`, 10);
    let peakAlive = 0;
    const monitor = setInterval(() => {
      peakAlive = Math.max(peakAlive, alive('roll').length);
    }, 10);
    try {
      await t.deploy(sleeperApp('roll', { VERSION: 'v2' }, { num_replicas: 5 }));
      await waitFor(
        async () =>
          (await json(await fetch(`${t.http}/roll?ms=1`))).version === 'v2' &&
          sleeper('roll')?.status === 'HEALTHY',
        120_000,
        'every replica on v2',
      );
      const versions = new Set<string>();
      for (let i = 0; i < 20; i++) versions.add((await json(await fetch(`${t.http}/roll?ms=1`))).version);
      assert.deepEqual([...versions], ['v2']);
      // Surge: 20% of 5, at least one.
      assert.ok(peakAlive <= 6, `peak of ${peakAlive} replicas alive at once`);
      assert.ok(peakAlive >= 5);

      const v2 = alive('roll')
        .map((r) => r.replica_id)
        .sort();
      await t.deploy(sleeperApp('roll', { VERSION: 'v3', BROKEN: '1' }, { num_replicas: 5 }));
      const app = await t.waitForApp('roll', ['DEPLOY_FAILED'], 120_000);
      assert.match(app.message, /this version is broken/);
      assert.equal(sleeper('roll')?.status, 'DEPLOY_FAILED');
      assert.deepEqual(
        alive('roll')
          .filter((r) => r.state === 'RUNNING')
          .map((r) => r.replica_id)
          .sort(),
        v2,
      );
      assert.equal((await json(await fetch(`${t.http}/roll?ms=1`))).version, 'v2');
    } finally {
      clearInterval(monitor);
    }
    const result = await load.stop();
    assert.deepEqual(result.failed, [], `${result.failed.length} of ${result.sent} requests failed`);
    assert.ok(peakAlive <= 6, `peak of ${peakAlive} replicas alive at once`);
  });
});

describe('graceful stop', () => {
  test('requests running on a replica being scaled down finish; one still running at the timeout is answered with an error', async () => {
    const options = { num_replicas: 2, graceful_shutdown_wait_loop_s: 0.1, graceful_shutdown_timeout_s: 3 };
    await t.deploy(sleeperApp('drain', {}, options));
    await t.waitForApp('drain', ['RUNNING']);
    const inFlight = Array.from({ length: 6 }, (_, i) =>
      fetch(`${t.http}/drain?ms=1500`, { headers: { 'x-request-id': `d${i}` } }),
    );
    // Both replicas are running requests before one of them is told to stop.
    await waitFor(
      () => alive('drain').every((r) => recorded(r.replica_id).includes('S d')),
      10_000,
      'requests running on both replicas',
    );
    await t.deploy(sleeperApp('drain', {}, { ...options, num_replicas: 1 }));
    const statuses = (await Promise.all(inFlight)).map((r) => r.status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    await waitFor(() => sleeper('drain')?.replicas.length === 1, 10_000, 'one replica left');

    const long = fetch(`${t.http}/drain?ms=10000`, { headers: { 'x-request-id': 'long' } });
    const [last] = alive('drain');
    await waitFor(() => recorded(last.replica_id).includes('S long'), 10_000, 'the long request to start');
    const stoppedAt = Date.now();
    await t.deploy(sleeperApp('drain', {}, { ...options, num_replicas: 0 }));
    const res = await long;
    const elapsed = Date.now() - stoppedAt;
    assert.equal(res.status, 500);
    assert.equal((await json(res)).code, 'RL_REPLICA_DIED');
    assert.ok(elapsed >= 2900 && elapsed < 9000, `answered after ${elapsed} ms`);
  });
});

describe('delete and re-add', () => {
  test('an application re-added while its replica drains: the old one finishes its request, a new one serves', async () => {
    const options = { num_replicas: 1, graceful_shutdown_wait_loop_s: 0.1, graceful_shutdown_timeout_s: 10 };
    await t.deploy(sleeperApp('redo', {}, options));
    await t.waitForApp('redo', ['RUNNING']);
    const [old] = alive('redo');
    const long = fetch(`${t.http}/redo?ms=4000`, { headers: { 'x-request-id': 'long' } });
    await waitFor(() => recorded(old.replica_id).includes('S long'), 10_000, 'the long request to start');
    await t.deploy({ applications: [] });
    await t.deploy(sleeperApp('redo', {}, options));
    await t.waitForApp('redo', ['RUNNING']);
    // The draining replica is still the controller's: shutdown waits for it, metrics include it.
    const tracked = t.head.controller.replicaProcesses().map((p) => p.spec.replicaId);
    assert.ok(tracked.includes(old.replica_id), `old replica ${old.replica_id} not tracked: ${tracked}`);
    assert.equal((await long).status, 200);
    const [fresh] = alive('redo');
    assert.notEqual(fresh.replica_id, old.replica_id);
    assert.equal((await json(await fetch(`${t.http}/redo?ms=1`))).replica, fresh.replica_id);
    await waitFor(() => t.head.controller.replicaProcesses().length === 1, 20_000, 'the old replica to exit');
  });
});

describe('chaos', () => {
  test('a replica killed -9 every 2 s under load: only requests running on it at that moment fail', async () => {
    await t.deploy(sleeperApp('chaos', {}, { num_replicas: 4 }));
    await t.waitForApp('chaos', ['RUNNING']);
    const load = new ClosedLoopLoad(`${t.http}/chaos?ms=50`, 8);
    const killed: { id: string; atMs: number }[] = [];
    const replaceMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 2000));
      const victims = alive('chaos').filter((r) => r.state === 'RUNNING');
      const victim = victims[i % victims.length];
      const killedAt = Date.now();
      killed.push({ id: victim.replica_id, atMs: killedAt });
      process.kill(victim.pid!, 'SIGKILL');
      await waitFor(
        () => runningCount('chaos') === 4 && !alive('chaos').some((r) => r.replica_id === victim.replica_id),
        30_000,
        'the killed replica to be replaced',
      );
      replaceMs.push(Date.now() - killedAt);
    }
    const result = await load.stop();
    // From the killed replicas' own records: requests running on them when they were killed.
    const runningAtDeath = runningAtKill(recordDir, killed);
    // Every failed request was running on a replica when it was killed. (The converse need not hold:
    // a call the replica started in the very event-loop turn it was killed, before it could say so,
    // is sent to another replica and succeeds there.)
    const failed = result.failed.map((f) => f.id);
    const notRunning = result.failed.filter((f) => !runningAtDeath.has(f.id));
    assert.deepEqual(
      notRunning.map((f) => f.id),
      [],
      `failed although not running on a killed replica: ${notRunning.map((f) => `${f.id} (${f.status}: ${f.body})`).join('; ')}`,
    );
    assert.ok(failed.length > 0, 'no request was running on any killed replica: the test proved nothing');
    for (const f of result.failed) {
      assert.equal(f.status, 500);
      assert.match(f.body, /RL_REPLICA_DIED/);
    }
    assert.ok(result.ok > 100, `only ${result.ok} requests succeeded`);
    const sorted = [...replaceMs].sort((a, b) => a - b);
    console.log(
      `chaos: ${result.sent} requests, ${result.failed.length} failed (all running on a killed replica), ${runningAtDeath.size - failed.length} running at a kill yet answered (rerun elsewhere, or the reply left in time), ${killed.length} replicas killed and replaced, time to replace median ${sorted[5]} ms, max ${sorted[9]} ms`,
    );
  });
});
