/** checkHealth(): a replica that fails three checks in a row is replaced. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { json, startTestHead, type TestHead, waitFor } from './harness.ts';

let t: TestHead;

before(async () => {
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'h',
        route_prefix: '/h',
        import_path: 'behaviors.ts:app',
        deployments: [{ name: 'Behaviors', health_check_period_s: 0.2, health_check_timeout_s: 2 }],
      },
    ],
  });
  await t.waitForApp('h', ['RUNNING']);
});

after(async () => {
  await t.stop();
});

const behaviors = () => t.head.controller.applicationDetails().h.deployments.Behaviors;

test('a replica whose checkHealth throws three times is replaced by a healthy one', async () => {
  const [original] = behaviors().replicas;
  const sickAt = Date.now();
  assert.equal((await json(await fetch(`${t.http}/h/sick`))).pid, original.pid);
  const unhealthy = await waitFor(
    () => (behaviors().status === 'UNHEALTHY' ? behaviors() : undefined),
    20_000,
    'the deployment to turn UNHEALTHY',
  );
  // Three failed checks, 200 ms apart: at least two periods after the replica fell sick.
  assert.ok(Date.now() - sickAt >= 2 * 200, 'replaced before three failed checks');
  assert.equal(unhealthy.status_trigger, 'HEALTH_CHECK_FAILED');
  assert.match(
    unhealthy.message,
    new RegExp(`replica ${original.replica_id} failed 3 health checks in a row \\(told to be sick\\)`),
  );
  await t.waitForApp('h', ['RUNNING']);
  const replicas = behaviors().replicas;
  assert.equal(replicas.length, 1);
  assert.notEqual(replicas[0].replica_id, original.replica_id);
  assert.equal(behaviors().status, 'HEALTHY');
  // The new replica serves, and stays healthy across further checks.
  const greeting = await json(await fetch(`${t.http}/h/greet`));
  assert.equal(greeting.pid, replicas[0].pid);
  await waitFor(
    async () => (await json(await fetch(`${t.http}/h/stats`))).healthChecks >= 5,
    20_000,
    'five health checks of the new replica',
  );
  assert.equal(behaviors().replicas[0].replica_id, replicas[0].replica_id);
  assert.equal(behaviors().status, 'HEALTHY');
  const metrics = await (await fetch(t.metricsUrl)).text();
  const checks = new RegExp(
    `ray_serve_health_check_latency_ms_count\\{deployment="Behaviors",replica="${replicas[0].replica_id}",application="h"\\} (\\d+)`,
  ).exec(metrics);
  assert.ok(checks && Number(checks[1]) >= 5, metrics);
  assert.match(
    metrics,
    new RegExp(
      `ray_serve_deployment_replica_healthy\\{deployment="Behaviors",replica="${replicas[0].replica_id}",application="h"\\} 1`,
    ),
  );
  assert.match(
    metrics,
    /ray_serve_deployment_replica_starts_total\{deployment="Behaviors",replica="[0-9a-f]{8}",application="h"\} 1/,
  );
});
