/** The REST API: declarative applies, validation that leaves running apps alone, status shapes, auth. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ServeConfigInput } from '../src/schema/serve-config.ts';
import { json, startTestHead, type TestHead, waitFor } from './harness.ts';

const token = 'test-token-123';
let t: TestHead;

const appB = { name: 'b', route_prefix: '/b', import_path: 'behaviors.ts:app' };
const appC = { name: 'c', route_prefix: '/c', import_path: 'behaviors.ts:app' };

async function put(config: unknown, auth = token): Promise<Response> {
  const rest = t.rest.address;
  return fetch(`${rest}/api/serve/applications/`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
    body: JSON.stringify(config),
  });
}

const replicaIds = async (app: string) => {
  const details = await t.rest.getApplications();
  return Object.values(details.applications[app].deployments)
    .flatMap((d) => d.replicas.map((r) => r.replica_id))
    .sort();
};

before(async () => {
  t = await startTestHead({ token });
  await t.rest.putApplications({ applications: [appB, appC] });
  await t.waitForApp('b', ['RUNNING']);
  await t.waitForApp('c', ['RUNNING']);
});

after(async () => {
  await t.stop();
});

describe('REST API', () => {
  test('GET answers in Ray shape with statuses and replica states', async () => {
    const details = await t.rest.getApplications();
    assert.equal(details.deploy_mode, 'MULTI_APP');
    assert.equal(details.proxy_location, 'EveryNode');
    assert.deepEqual(
      Object.values(details.proxies).map((p) => p.status),
      ['HEALTHY'],
    );
    const b = details.applications.b;
    assert.equal(b.status, 'RUNNING');
    assert.equal(b.route_prefix, '/b');
    assert.deepEqual(Object.keys(b.deployments).sort(), ['Behaviors', 'Worker']);
    const worker = b.deployments.Worker;
    assert.equal(worker.status, 'HEALTHY');
    assert.equal(worker.status_trigger, 'CONFIG_UPDATE_COMPLETED');
    assert.equal(worker.target_num_replicas, 1);
    assert.equal(worker.deployment_config.max_ongoing_requests, 2);
    assert.equal(worker.replicas.length, 1);
    assert.equal(worker.replicas[0].state, 'RUNNING');
    assert.equal(typeof worker.replicas[0].pid, 'number');
  });

  test('every call needs the bearer token', async () => {
    const res = await fetch(`${t.rest.address}/api/serve/applications/`);
    assert.equal(res.status, 401);
    assert.equal((await put({ applications: [appB, appC] }, 'wrong')).status, 401);
  });

  test('invalid configs answer 400 with the field path, and running apps keep serving unchanged', async () => {
    const before = await replicaIds('b');
    const invalid: [unknown, string][] = [
      [{ applications: [{ ...appB, import_path: 'no-colon' }] }, 'applications[0].import_path'],
      [{ applications: [{ ...appB, route_prefix: 'b' }] }, 'applications[0].route_prefix'],
      [{ applications: [appB, { ...appC, name: 'b' }] }, 'applications[1].name'],
      [{ applications: [appB, { ...appC, route_prefix: '/b' }] }, 'applications[1].route_prefix'],
      [{ applications: [appB], proxy_locaton: 'HeadOnly' }, 'proxy_locaton'],
      [
        { applications: [{ ...appB, deployments: [{ name: 'Worker', num_replicas: -1 }] }] },
        'applications[0].deployments[0].num_replicas',
      ],
      [
        { applications: [{ ...appB, deployments: [{ name: 'Worker', max_ongoing_requests: 0 }] }] },
        'applications[0].deployments[0].max_ongoing_requests',
      ],
      [
        { applications: [{ ...appB, deployments: [{ name: 'Worker', max_queued_requests: 0 }] }] },
        'applications[0].deployments[0].max_queued_requests',
      ],
      [
        {
          applications: [
            {
              ...appB,
              deployments: [{ name: 'Worker', autoscaling_config: { min_replicas: 3, max_replicas: 2 } }],
            },
          ],
        },
        'applications[0].deployments[0].autoscaling_config.min_replicas',
      ],
      [{ applications: [{ ...appB, runtime_env: { pip: ['torch'] } }] }, 'applications[0].runtime_env.pip'],
      [{ http_options: { port: 70000 }, applications: [appB] }, 'http_options.port'],
      [
        { applications: [{ ...appB, deployments: [{ name: 'Worker', num_replica: 2 }] }] },
        'applications[0].deployments[0].num_replica',
      ],
      [
        {
          applications: [
            { ...appB, deployments: [{ name: 'Worker', ray_actor_options: { num_gpus: 'one' } }] },
          ],
        },
        'applications[0].deployments[0].ray_actor_options.num_gpus',
      ],
    ];
    for (const [config, path] of invalid) {
      const res = await put(config);
      assert.equal(res.status, 400, `expected 400 for ${path}`);
      const body = await json(res);
      assert.equal(body.error, 'RL_CONFIG_INVALID');
      assert.ok(
        body.issues.some((i: { path: string }) => i.path === path),
        `expected an issue at ${path}, got ${JSON.stringify(body.issues)}`,
      );
      assert.ok(body.message.includes(path), body.message);
    }
    // Nothing changed: same replicas, still serving, c untouched too.
    assert.deepEqual(await replicaIds('b'), before);
    assert.equal((await fetch(`${t.http}/b/greet`)).status, 200);
    assert.equal((await fetch(`${t.http}/c/greet`)).status, 200);
  });

  test('a PUT that changes one app updates it and leaves the other untouched', async () => {
    const cBefore = await replicaIds('c');
    const bBefore = await replicaIds('b');
    const updated: ServeConfigInput = {
      applications: [
        { ...appB, deployments: [{ name: 'Behaviors', user_config: { greeting: 'bonjour' } }] },
        appC,
      ],
    };
    assert.equal((await put(updated)).status, 200);
    await waitFor(
      async () => (await json(await fetch(`${t.http}/b/greet`))).greeting === 'bonjour',
      30_000,
      'the new user_config to reach the replica',
    );
    await t.waitForApp('b', ['RUNNING']);
    // user_config is applied live: the same replicas, reconfigured, not restarted.
    assert.deepEqual(await replicaIds('b'), bBefore);
    assert.deepEqual(await replicaIds('c'), cBefore);
  });

  test('a PUT without a body is refused, and a YAML body is accepted', async () => {
    const before = await replicaIds('c');
    const empty = await fetch(`${t.rest.address}/api/serve/applications/`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(empty.status, 400);
    assert.equal((await json(empty)).error, 'RL_CONFIG_INVALID');
    const broken = await fetch(`${t.rest.address}/api/serve/applications/`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"applications": [',
    });
    assert.equal(broken.status, 400);
    assert.deepEqual(await replicaIds('c'), before);
    const yamlBody = [
      'applications:',
      '  - {name: b, route_prefix: /b, import_path: "behaviors.ts:app", deployments: [{name: Behaviors, user_config: {greeting: bonjour}}]}',
      '  - {name: c, route_prefix: /c, import_path: "behaviors.ts:app"}',
    ].join('\n');
    const res = await fetch(`${t.rest.address}/api/serve/applications/`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
      body: yamlBody,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await replicaIds('c'), before);
  });

  test('a reconfigure sent while a replica is still starting is applied before it serves', async () => {
    const slow = { name: 'slow', route_prefix: '/slow', import_path: 'behaviors.ts:slowStart' };
    const withGreeting = (greeting: string) => ({
      applications: [
        appB,
        appC,
        { ...slow, deployments: [{ name: 'SlowGreeter', user_config: { greeting } }] },
      ],
    });
    assert.equal((await put(withGreeting('first'))).status, 200);
    await waitFor(
      () =>
        t.head.controller.applicationDetails().slow?.deployments.SlowGreeter?.replicas[0]?.state ===
        'STARTING',
      30_000,
      'the slow replica to be starting',
    );
    assert.equal((await put(withGreeting('second'))).status, 200);
    await t.waitForApp('slow', ['RUNNING']);
    assert.deepEqual(await json(await fetch(`${t.http}/slow`)), { greeting: 'second' });
  });

  test('a PUT that omits an app deletes it', async () => {
    assert.equal(
      (
        await put({
          applications: [
            { ...appB, deployments: [{ name: 'Behaviors', user_config: { greeting: 'bonjour' } }] },
          ],
        })
      ).status,
      200,
    );
    await waitFor(
      async () => !(await t.rest.getApplications()).applications.c,
      30_000,
      'app c to be deleted',
    );
    const res = await fetch(`${t.http}/c/greet`);
    assert.equal(res.status, 404);
    assert.equal((await fetch(`${t.http}/b/greet`)).status, 200);
  });

  test('an import that fails reports DEPLOY_FAILED with the cause', async () => {
    assert.equal(
      (await put({ applications: [appB, { ...appC, import_path: 'behaviors.ts:missing' }] })).status,
      200,
    );
    const c = await t.waitForApp('c', ['DEPLOY_FAILED']);
    assert.match(c.message, /has no export 'missing'/);
    assert.equal((await fetch(`${t.http}/b/greet`)).status, 200);
  });

  test('DELETE removes every application', async () => {
    await t.rest.deleteApplications();
    await waitFor(
      async () => Object.keys((await t.rest.getApplications()).applications).length === 0,
      30_000,
      'all apps deleted',
    );
    assert.equal((await fetch(`${t.http}/b/greet`)).status, 404);
  });
});
