/** Autoscaling with Ray's policy against real replica processes, with short delays. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestHead, type TestHead, waitFor } from './harness.ts';
import { ClosedLoopLoad } from './load.ts';

let t: TestHead;

before(async () => {
  t = await startTestHead();
});

after(async () => {
  await t.stop();
});

const sleeper = (name: string) => t.head.controller.applicationDetails()[name]?.deployments.Sleeper;
const running = (name: string) => sleeper(name)?.replicas.filter((r) => r.state === 'RUNNING').length ?? 0;

test('target 2 under 20+ concurrent requests scales to 10 after the upscale delay, and back to min after the downscale delay', async () => {
  await t.deploy({
    applications: [
      {
        name: 'scale',
        route_prefix: '/scale',
        import_path: 'lifecycle.ts:app',
        deployments: [
          {
            name: 'Sleeper',
            autoscaling_config: {
              min_replicas: 1,
              max_replicas: 10,
              target_ongoing_requests: 2,
              upscale_delay_s: 1,
              downscale_delay_s: 2,
              look_back_period_s: 1,
            },
          },
        ],
      },
    ],
  });
  await t.waitForApp('scale', ['RUNNING']);
  assert.equal(running('scale'), 1);

  const started = Date.now();
  // A closed loop keeps a little less than one request per client in the system (each client's turn
  // between response and next request); below exactly 20 the policy would shrink by one. 24 clients
  // keep at least 20 in the system; 2 per replica wanted, capped by max_replicas: 10 replicas.
  const load = new ClosedLoopLoad(`${t.http}/scale?ms=200`, 24);
  const upscaledAt = await waitFor(
    () => (sleeper('scale')?.target_num_replicas === 10 ? Date.now() : undefined),
    30_000,
    () => `target 10 (now ${sleeper('scale')?.target_num_replicas})`,
  );
  assert.ok(upscaledAt - started >= 1000, `scaled up ${upscaledAt - started} ms after the load began`);
  await waitFor(
    () => running('scale') === 10,
    60_000,
    () => `10 running replicas (now ${running('scale')})`,
  );
  await waitFor(() => sleeper('scale')?.status === 'HEALTHY', 10_000, 'HEALTHY at 10 replicas');
  assert.equal(sleeper('scale')?.status_trigger, 'UPSCALE_COMPLETED');
  const metrics = await (await fetch(t.metricsUrl)).text();
  assert.match(
    metrics,
    /ray_serve_autoscaling_target_replicas\{deployment="Sleeper",application="scale"\} 10/,
  );
  assert.match(
    metrics,
    /ray_serve_autoscaling_desired_replicas\{deployment="Sleeper",application="scale"\} \d+/,
  );

  const stopped = Date.now(); // clients send no new request from now on
  const result = await load.stop();
  assert.deepEqual(result.failed, []);
  const downscaledAt = await waitFor(
    () => (sleeper('scale')?.target_num_replicas === 1 ? Date.now() : undefined),
    30_000,
    'target back to 1',
  );
  assert.ok(
    downscaledAt - stopped >= 2000,
    `scaled down ${downscaledAt - stopped} ms after the load stopped`,
  );
  await waitFor(
    () => sleeper('scale')?.replicas.length === 1 && running('scale') === 1,
    60_000,
    'one replica left',
  );
  await waitFor(() => sleeper('scale')?.status === 'HEALTHY', 10_000, 'HEALTHY at 1 replica');
  assert.equal(sleeper('scale')?.status_trigger, 'DOWNSCALE_COMPLETED');
});

test('scale to zero and back: a request waits at the proxy while a replica starts, then is served', async () => {
  await t.deploy({
    applications: [
      {
        name: 'zero',
        route_prefix: '/zero',
        import_path: 'lifecycle.ts:app',
        deployments: [
          {
            name: 'Sleeper',
            autoscaling_config: {
              min_replicas: 0,
              initial_replicas: 0,
              max_replicas: 2,
              look_back_period_s: 0.5,
              downscale_delay_s: 0.5,
              upscale_delay_s: 30,
            },
          },
        ],
      },
    ],
  });
  await t.waitForApp('zero', ['RUNNING']);
  assert.equal(sleeper('zero')?.replicas.length, 0);
  const res = await fetch(`${t.http}/zero?ms=10`);
  assert.equal(res.status, 200);
  assert.equal(running('zero'), 1);
  // Idle again: back to zero after the downscale delay.
  await waitFor(() => sleeper('zero')?.replicas.length === 0, 30_000, 'zero replicas');
  assert.equal(sleeper('zero')?.target_num_replicas, 0);
});
