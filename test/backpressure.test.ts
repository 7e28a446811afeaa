/** max_queued_requests at the proxy and at handles, and Ray's metric names aggregated across replicas. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { json, startTestHead, type TestHead } from './harness.ts';

let t: TestHead;

before(async () => {
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'limited',
        route_prefix: '/limited',
        import_path: 'behaviors.ts:app',
        deployments: [
          { name: 'Behaviors', max_ongoing_requests: 1, max_queued_requests: 2 },
          { name: 'Worker', max_ongoing_requests: 2, max_queued_requests: 1 },
        ],
      },
    ],
  });
  await t.waitForApp('limited', ['RUNNING']);
});

after(async () => {
  await t.stop();
});

const statuses = (responses: Response[]) => {
  const counts: Record<number, number> = {};
  for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
};

describe('backpressure', () => {
  test('the proxy answers 503 beyond max_queued_requests', async () => {
    // One runs, two wait at the proxy, the other seven are refused at once.
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${t.http}/limited/sleep?ms=1500`)),
    );
    assert.deepEqual(statuses(responses), { 200: 3, 503: 7 });
    const refused = await json(responses.find((r) => r.status === 503)!);
    assert.equal(refused.code, 'RL_BACKPRESSURE');
    assert.match(refused.message, /max_queued_requests/);
  });

  test('a handle raises a backpressure error beyond max_queued_requests', async () => {
    await t.deploy({
      applications: [
        {
          name: 'limited',
          route_prefix: '/limited',
          import_path: 'behaviors.ts:app',
          deployments: [{ name: 'Worker', max_ongoing_requests: 2, max_queued_requests: 1 }],
        },
      ],
    });
    await t.waitForApp('limited', ['RUNNING']);
    // Behaviors now takes 5 at once (default); the Worker runs 2, queues 1, refuses the other 2.
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${t.http}/limited/handle-slow?ms=1500`)),
    );
    assert.deepEqual(statuses(responses), { 200: 3, 503: 2 });
    const refused = await json(responses.find((r) => r.status === 503)!);
    assert.equal(refused.code, 'RL_BACKPRESSURE');
  });
});

describe('metrics', () => {
  test('Ray Serve metric names and labels, aggregated from the proxy and every replica', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${t.http}/limited/handle-slow?ms=1`)).status, 200);
    assert.equal((await fetch(`${t.http}/limited/error`)).status, 500);
    const text = await (await fetch(t.metricsUrl)).text();
    const value = (name: string, labels: Record<string, string | RegExp>) => sample(text, name, labels);
    // Proxy family.
    assert.ok(
      value('ray_serve_num_http_requests_total', {
        route: '/limited',
        method: 'GET',
        application: 'limited',
        status_code: '200',
      })! >= 3,
    );
    assert.equal(
      value('ray_serve_num_http_error_requests_total', {
        route: '/limited',
        error_code: '500',
        method: 'GET',
        application: 'limited',
      }),
      1,
    );
    assert.equal(
      value('ray_serve_http_request_latency_ms_count', {
        route: '/limited',
        application: 'limited',
        status_code: '500',
      }),
      1,
    );
    assert.equal(value('ray_serve_num_ongoing_http_requests', { node_id: /.+/ }), 0);
    // Handle family: the proxy's router to the ingress, the ingress replica's router to the worker.
    assert.ok(
      value('ray_serve_handle_request_counter_total', {
        handle: 'proxy',
        deployment: 'Behaviors',
        application: 'limited',
      })! >= 19,
    );
    assert.equal(
      value('ray_serve_deployment_queued_queries', {
        handle: 'proxy',
        deployment: 'Behaviors',
        application: 'limited',
      }),
      0,
    );
    assert.equal(
      value('ray_serve_deployment_queued_queries', {
        handle: /^Behaviors#[0-9a-f]{8}$/,
        deployment: 'Worker',
        application: 'limited',
      }),
      0,
    );
    assert.equal(
      value('ray_serve_deployment_queued_queries', { handle: 'proxy', deployment: 'Worker' }),
      undefined,
    );
    // Replica family, labelled per replica.
    const worker = {
      deployment: 'Worker',
      replica: /^[0-9a-f]{8}$/,
      application: 'limited',
      route: '/limited',
    };
    assert.ok(value('ray_serve_deployment_request_counter_total', worker)! >= 3);
    assert.ok(value('ray_serve_deployment_processing_latency_ms_count', worker)! >= 3);
    assert.equal(value('ray_serve_replica_processing_queries', worker), 0);
    // The Behaviors replica failed 3 requests: the 2 refused by the Worker's queue and /error.
    assert.equal(
      value('ray_serve_deployment_error_counter_total', { deployment: 'Behaviors', application: 'limited' }),
      3,
    );
    // Controller family.
    const replica = { deployment: 'Worker', replica: /^[0-9a-f]{8}$/, application: 'limited' };
    assert.equal(value('ray_serve_deployment_replica_starts_total', replica), 1);
    assert.equal(value('ray_serve_deployment_replica_healthy', replica), 1);
  });
});

/** The value of the first sample of `name` whose labels match (exact strings or patterns). */
function sample(text: string, name: string, labels: Record<string, string | RegExp>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const matches = Object.entries(labels).every(([k, v]) =>
      typeof v === 'string' ? have[k] === v : have[k] !== undefined && v.test(have[k]),
    );
    if (matches) return Number(m[3]);
  }
  return undefined;
}
