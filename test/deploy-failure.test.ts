/** A deployment whose constructor throws: bounded retries, DEPLOY_FAILED with the cause, 503 at once. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { json, startTestHead, type TestHead } from './harness.ts';

let t: TestHead;

before(async () => {
  t = await startTestHead();
});

after(async () => {
  await t.stop();
});

test('constructor failures are retried min(3 x target, 20) times, then DEPLOY_FAILED; requests get 503 naming the cause', async () => {
  await t.deploy({
    applications: [
      { name: 'ok', route_prefix: '/ok', import_path: 'behaviors.ts:app' },
      { name: 'x', route_prefix: '/x', import_path: 'behaviors.ts:broken' },
    ],
  });
  const app = await t.waitForApp('x', ['DEPLOY_FAILED'], 60_000);
  assert.match(
    app.message,
    /deployment 'Broken': replica [0-9a-f]{8} failed to start: cannot load the model/,
  );
  const broken = app.deployments.Broken;
  assert.equal(broken.status, 'DEPLOY_FAILED');
  assert.equal(broken.status_trigger, 'REPLICA_STARTUP_FAILED');
  const metrics = await (await fetch(t.metricsUrl)).text();
  const starts = metrics
    .split('\n')
    .filter((l) => l.startsWith('ray_serve_deployment_replica_starts_total{deployment="Broken"'));
  assert.equal(starts.length, 3, starts.join('\n'));

  const res = await fetch(`${t.http}/x`);
  assert.equal(res.status, 503);
  const body = await json(res);
  assert.equal(body.code, 'RL_UNAVAILABLE');
  assert.match(body.message, /cannot load the model/);
  await t.waitForApp('ok', ['RUNNING']);
  assert.equal((await fetch(`${t.http}/ok/greet`)).status, 200);
});
