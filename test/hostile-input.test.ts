/**
 * Hostile inputs against a running head, at a scale that fits the test budget: each case is an
 * input that once took the head down, stalled it or corrupted its state, and each asserts that the
 * head stays up, keeps serving and keeps its config. The head listens for workers (so the cluster
 * port and the replicas' TCP ports are open) and keeps its state in a directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { replicaCredential } from '../src/runtime/cluster/token.ts';
import { Head } from '../src/runtime/head.ts';
import { type Frame, FrameKind } from '../src/runtime/transport/frame.ts';
import { connectFramed } from '../src/runtime/transport/framed-socket.ts';
import { fixturesDir, type Json, startTestHead, type TestHead, waitFor } from './harness.ts';

const TOKEN = 'hostile-input-token';
const MIB = 1024 * 1024;
// Set where replicas and builds could inherit it: they must not.
process.env.RAYLINE_API_TOKEN = TOKEN;

const stateDir = mkdtempSync(join(tmpdir(), 'rayline-hostile-'));
const stored = () => JSON.parse(readFileSync(join(stateDir, 'serve-config.json'), 'utf8'));
let h: TestHead;
let restUrl: string;
let clusterPort: number;

const base = {
  applications: [
    { name: 'hello', route_prefix: '/hello', import_path: 'hostile.ts:app' },
    { name: 'ec', route_prefix: '/ec', import_path: 'hostile.ts:app' },
  ],
};
const auth = { authorization: `Bearer ${TOKEN}` };

before(async () => {
  h = await startTestHead({
    token: TOKEN,
    http: { body_limit_bytes: MIB, buffered_body_limit_bytes: 4 * MIB },
    head: {
      stateDir,
      cluster: { host: '127.0.0.1', port: 0, ip: '127.0.0.1' },
      preAuth: { cluster: { deadlineMs: 1_000 } },
      buildConcurrency: 2,
    },
  });
  restUrl = h.rest.address;
  clusterPort = Number(h.head.addresses!.cluster!.split(':').pop());
  assert.equal((await put(base)).status, 200);
  await h.waitForApp('hello', ['RUNNING']);
  await h.waitForApp('ec', ['RUNNING']);
});

after(async () => {
  await h.stop().catch(() => {});
  rmSync(stateDir, { recursive: true, force: true });
});

function put(body: unknown, contentType = 'application/json'): Promise<Response> {
  return fetch(`${restUrl}/api/serve/applications/`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function appNames(): Promise<string[]> {
  const res = await fetch(`${restUrl}/api/serve/applications/`, { headers: auth });
  assert.equal(res.status, 200);
  return Object.keys(((await res.json()) as Json).applications).sort();
}

/** The head still serves both apps, lists exactly them, and has them stored. */
async function assertIntact(): Promise<void> {
  for (const app of ['hello', 'ec']) {
    const res = await fetch(`${h.http}/${app}/x`);
    assert.equal(res.status, 200, `GET /${app}/x`);
  }
  assert.deepEqual(await appNames(), ['ec', 'hello']);
  assert.deepEqual(
    stored().applications.map((a: { name: string }) => a.name),
    ['hello', 'ec'],
  );
}

/** A raw GET, so that the path reaches the proxy exactly as written (fetch normalizes it). */
function rawGet(path: string): Promise<{ status: number; body: Json }> {
  const { hostname, port } = new URL(h.http);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `{reason: count}` of connections a port closed before they authenticated. */
async function refused(port: string): Promise<Record<string, number>> {
  // Read in process: the metrics port itself may be the one flooded.
  const text = await h.head.metrics();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('rayline_preauth_connections_refused_total{')) continue;
    if (!line.includes(`port="${port}"`)) continue;
    const reason = /reason="(\w+)"/.exec(line)![1];
    out[reason] = (out[reason] ?? 0) + Number(line.split(' ').pop());
  }
  return out;
}
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

function closedPromise(socket: net.Socket): Promise<void> {
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Reads newline-separated JSON from the cluster port until `match` says stop. */
function clusterSession(lines: string[], match: (message: Json) => boolean): Promise<Json> {
  const socket = net.connect(clusterPort, '127.0.0.1');
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n'); i !== -1; i = buffer.indexOf('\n')) {
        const message = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (match(message)) {
          socket.end(`${JSON.stringify({ t: 'leaving' })}\n`);
          resolve(message);
        }
      }
    });
    socket.once('close', () => reject(new Error('closed before an answer')));
    socket.once('connect', () => socket.write(lines.map((l) => `${l}\n`).join('')));
  });
}

test('cluster port: a flood of hellos that never end is cut at a few KiB each, and honest nodes still join', async () => {
  const before = await refused('cluster');
  const flood = 60;
  const sockets = Array.from({ length: flood }, () => net.connect(clusterPort, '127.0.0.1'));
  const closed = sockets.map(closedPromise);
  for (const socket of sockets) {
    socket.once('connect', () => {
      socket.write('{"t":"hello","token":"');
      socket.write(Buffer.alloc(MIB, 'a'));
    });
  }
  await Promise.all(closed);
  const counts = await refused('cluster');
  assert.equal(total(counts) - total(before), flood, 'every flooding connection was refused or cut once');
  assert.ok((counts.too_many_bytes ?? 0) > (before.too_many_bytes ?? 0), 'cut at the byte limit');
  // A peer that sends nothing is cut at the deadline (1 s here).
  const idle = net.connect(clusterPort, '127.0.0.1');
  await closedPromise(idle);
  assert.equal((await refused('cluster')).deadline, (counts.deadline ?? 0) + 1);
  // A wrong token is told so; the right one still joins.
  const node = { id: 'probe-node', ip: '127.0.0.1', resources: {}, gpuIds: [], labels: {} };
  const hello = JSON.stringify({ t: 'hello', token: '', node, replicas: [] });
  const wrong = await clusterSession([JSON.stringify({ t: 'auth', token: 'nope' })], () => true);
  assert.equal(wrong.t, 'refused');
  const welcome = await clusterSession(
    [JSON.stringify({ t: 'auth', token: TOKEN }), hello],
    (m) => m.t === 'welcome',
  );
  assert.equal(welcome.t, 'welcome');
  await assertIntact();
});

test('REST, metrics and proxy ports: idle connections beyond the per-source limit are refused', async () => {
  const ports = [
    ['rest', restUrl, 16],
    ['metrics', h.metricsUrl, 16],
    ['proxy', h.http, 256],
  ] as const;
  for (const [name, url, perSource] of ports) {
    const before = await refused(name);
    const { hostname, port } = new URL(url);
    const idle = Array.from({ length: perSource + 8 }, () => net.connect(Number(port), hostname));
    const closed = idle.map((s) => closedPromise(s));
    // `perSource` may wait per source address: the other 8 are closed at once.
    await waitFor(
      async () => total(await refused(name)) - total(before) >= 8,
      20_000,
      `8 refusals on ${name}`,
    );
    assert.equal((await refused(name)).source_limit - (before.source_limit ?? 0), 8, name);
    for (const s of idle) s.destroy();
    await Promise.all(closed);
  }
  // Whoever has not shown the token gets one answer, and the connection closes.
  const res = await fetch(`${restUrl}/api/serve/applications/`, { headers: { authorization: 'Bearer x' } });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('connection'), 'close');
  await assertIntact();
});

test('replica TCP port: idle peers are bounded; only the replica credential runs a call, never the admin token', async () => {
  const address = h.head.controller
    .replicaProcesses()
    .map((p) => p.tcpAddress)
    .find(Boolean)!;
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  const [host, port] = address.split(':');
  const idle = Array.from({ length: 24 }, () => net.connect(Number(port), host));
  const states = idle.map(() => false);
  const closedAt = idle.map((s, i) =>
    closedPromise(s).then(() => {
      states[i] = true;
    }),
  );
  await waitFor(() => states.filter(Boolean).length >= 8, 20_000, '8 idle replica connections refused');
  for (const s of idle) s.destroy();
  await Promise.all(closedAt);
  const call = { m: '__call__', h: { method: 'GET', url: '/hello/x', headers: {} } };
  const attempt = async (token: string) => {
    const frames: Frame[] = [];
    const socket = await connectFramed(address, (f) => frames.push(f));
    return new Promise<'closed' | Frame>((resolve) => {
      socket.onClose(() => resolve('closed'));
      const poll = setInterval(() => {
        const reply = frames.find((f) => f.kind === FrameKind.Reply);
        if (reply) {
          clearInterval(poll);
          socket.destroy();
          resolve(reply);
        }
      }, 10);
      socket.onClose(() => clearInterval(poll));
      socket.send(FrameKind.Hello, 0, { token });
      socket.send(FrameKind.Call, 1, call, Buffer.alloc(0));
    });
  };
  assert.equal(await attempt(TOKEN), 'closed', 'the admin token is not the replica credential');
  const reply = await attempt(replicaCredential(TOKEN));
  assert.notEqual(reply, 'closed');
  assert.equal(JSON.parse((reply as Frame).payload.toString()).tokenInEnv, false);
  await assertIntact();
});

test('the replica credential opens nothing on the REST API; replicas never see the admin token', async () => {
  const res = await fetch(`${restUrl}/api/serve/applications/`, {
    headers: { authorization: `Bearer ${replicaCredential(TOKEN)}` },
  });
  assert.equal(res.status, 401);
  assert.equal(((await res.json()) as Json).code, 'RL_UNAUTHORIZED');
  const served = (await (await fetch(`${h.http}/hello/x`)).json()) as Json;
  assert.equal(served.tokenInEnv, false);
  // A build whose import fails with its environment in the message: the status holds no token.
  const leaky = {
    applications: [
      ...base.applications,
      { name: 'leaky', route_prefix: '/leaky', import_path: 'hostile-env.ts:app' },
    ],
  };
  assert.equal((await put(leaky)).status, 200);
  const failed = await h.waitForApp('leaky', ['DEPLOY_FAILED']);
  assert.match(failed.message, /build env token=\(none\)/);
  assert.doesNotMatch(
    JSON.stringify(await (await fetch(`${restUrl}/api/serve/applications/`, { headers: auth })).json()),
    new RegExp(TOKEN),
  );
  assert.equal((await put(base)).status, 200);
  await waitFor(async () => (await appNames()).length === 2, 30_000, 'leaky deleted');
});

/** A YAML alias bomb: a1 lists ten x, each next level lists the previous one ten times. */
function aliasBomb(levels: number, field = 'args'): string {
  const lines = [
    'applications:',
    '  - name: bomb',
    '    route_prefix: /bomb',
    '    import_path: hostile.ts:app',
  ];
  lines.push(`    ${field}:`);
  lines.push('      a1: &a1 [x, x, x, x, x, x, x, x, x, x]');
  for (let i = 2; i <= levels; i++) {
    lines.push(
      `      a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

test('a YAML alias bomb is refused with the limit named, and the head keeps serving and its config', async () => {
  const bomb = aliasBomb(10);
  assert.ok(bomb.length < 1200, `the bomb is small (${bomb.length} bytes)`);
  const res = await put(bomb, 'application/yaml');
  assert.equal(res.status, 400);
  const body = (await res.json()) as Json;
  assert.equal(body.code, 'RL_CONFIG_INVALID');
  assert.match(body.message, /larger than 16777216 bytes .*aliases expanded/);
  // Six levels fit the document but not `args` (1 MiB): the field is named.
  const smaller = (await (await put(aliasBomb(6), 'application/yaml')).json()) as Json;
  assert.equal(smaller.code, 'RL_CONFIG_INVALID');
  assert.deepEqual(
    smaller.issues.map((i: { path: string }) => i.path),
    ['applications[0].args'],
  );
  assert.match(smaller.issues[0].message, /args is larger than 1048576 bytes/);
  await assertIntact();
});

test('deep nesting in args or user_config is a 400 naming the field, not a stack overflow later', async () => {
  // Written out as text: JSON.stringify of the test's own value would overflow the stack too.
  const nest = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
  const app = (field: string) =>
    `{"applications":[{"name":"deep","route_prefix":"/deep","import_path":"hostile.ts:app",${field}}]}`;
  // 10,000 levels: over the document's own limit; the message names where the nesting starts.
  const huge = (await (await put(app(`"args":{"a":${nest(10_000)}}`))).json()) as Json;
  assert.equal(huge.code, 'RL_CONFIG_INVALID');
  assert.match(huge.message, /applications\[0\]\.args\.a\[0\].*nested deeper than 64 levels/);
  const deepArgs = (await (await put(app(`"args":{"a":${nest(40)}}`))).json()) as Json;
  assert.deepEqual(
    deepArgs.issues.map((i: { path: string }) => i.path),
    ['applications[0].args'],
  );
  assert.match(deepArgs.issues[0].message, /nested deeper than 32 levels/);
  const deepConfig = (await (
    await put(app(`"deployments":[{"name":"Probe","user_config":{"a":${nest(40)}}}]`))
  ).json()) as Json;
  assert.deepEqual(
    deepConfig.issues.map((i: { path: string }) => i.path),
    ['applications[0].deployments[0].user_config'],
  );
  await assertIntact();
});

test('JSON bodies: duplicate keys and __proto__ are refused by name; 413 and 415 carry their own codes', async () => {
  const dup = await put(
    '{"applications":[{"name":"a","import_path":"hostile.ts:app","name":"b","route_prefix":"/dup"}]}',
  );
  assert.equal(dup.status, 400);
  const dupBody = (await dup.json()) as Json;
  assert.equal(dupBody.issues[0].path, 'applications[0].name');
  assert.match(dupBody.issues[0].message, /duplicate key 'name'/);
  const proto = (await (
    await put(
      '{"applications":[{"name":"p","route_prefix":"/p","import_path":"hostile.ts:app","args":{"__proto__":{"x":1}}}]}',
    )
  ).json()) as Json;
  assert.equal(proto.code, 'RL_CONFIG_INVALID');
  assert.match(proto.message, /applications\[0\]\.args: the key '__proto__' is not allowed/);
  const text = await put('applications: []', 'text/plain');
  assert.equal(text.status, 415);
  assert.equal(((await text.json()) as Json).code, 'RL_UNSUPPORTED_MEDIA_TYPE');
  const large = await new Promise<string>((resolve, reject) => {
    const { hostname, port } = new URL(restUrl);
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (c) => {
      answer += c;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(
      `PUT /api/serve/applications/ HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${32 * MIB}\r\n\r\n{`,
    );
  });
  assert.match(large, /^HTTP\/1\.1 413/);
  assert.match(large, /"code":"RL_BODY_TOO_LARGE"/);
  await assertIntact();
});

test('a config change that fails before its commit leaves the previous config stored and serving', async () => {
  const next = {
    applications: [
      ...base.applications,
      { name: 'third', route_prefix: '/third', import_path: 'hostile.ts:app' },
    ],
  };
  const controller = h.head.controller;
  const steps: [string, () => () => void][] = [
    [
      'plan',
      () => {
        const plan = controller.plan;
        controller.plan = () => {
          throw new Error('injected: planning failed');
        };
        return () => {
          controller.plan = plan;
        };
      },
    ],
    [
      'store',
      () => {
        // The state file is written to `.tmp` then renamed: a directory there fails the write.
        mkdirSync(join(stateDir, 'serve-config.json.tmp'));
        return () => rmdirSync(join(stateDir, 'serve-config.json.tmp'));
      },
    ],
    [
      'commit',
      () => {
        const commit = controller.commit;
        controller.commit = () => {
          throw new Error('injected: commit failed');
        };
        return () => {
          controller.commit = commit;
        };
      },
    ],
  ];
  for (const [step, inject] of steps) {
    const restore = inject();
    try {
      const res = await put(next);
      assert.equal(res.status, 500, `a failure at ${step} answers 500`);
      assert.equal(((await res.json()) as Json).code, 'RL_INTERNAL');
    } finally {
      restore();
    }
    await assertIntact();
    assert.ok(!existsSync(join(stateDir, 'serve-config.json.tmp')));
  }
  // Without a failure the same change goes through.
  assert.equal((await put(next)).status, 200);
  assert.deepEqual(await appNames(), ['ec', 'hello', 'third']);
  assert.equal(stored().applications.length, 3);
  assert.equal((await put(base)).status, 200);
  await waitFor(async () => (await appNames()).length === 2, 30_000, 'third deleted');
});

test('routing uses the normalized, decoded path the application sees; route prefixes are validated', async () => {
  const hello = await rawGet('/hello/x');
  const ec = await rawGet('/ec/x');
  assert.notEqual(hello.body.pid, ec.body.pid);
  for (const path of ['/hello/../ec/echo', '/hello/%2e%2e/ec/echo', '/hello/./../ec/echo']) {
    const res = await rawGet(path);
    assert.equal(res.status, 200, path);
    assert.equal(res.body.pid, ec.body.pid, `${path} runs app ec`);
    assert.equal(res.body.path, '/ec/echo', `${path} is /ec/echo to the app`);
  }
  for (const prefix of ['/a b', '/a\u0000b', '/a"b', '/a\nb', '/x/../y', '/a%2Fb', '/a?b', '/a\\b']) {
    const res = await put({
      applications: [{ name: 'bad', route_prefix: prefix, import_path: 'hostile.ts:app' }],
    });
    assert.equal(res.status, 400, JSON.stringify(prefix));
    const body = (await res.json()) as Json;
    assert.deepEqual(
      body.issues.map((i: { path: string }) => i.path),
      ['applications[0].route_prefix'],
      JSON.stringify(prefix),
    );
  }
  // A non-ASCII prefix, written escaped or not, is stored decoded and reachable.
  const cafe = {
    applications: [
      ...base.applications,
      { name: 'cafe', route_prefix: '/caf%C3%A9', import_path: 'hostile.ts:app' },
    ],
  };
  assert.equal((await put(cafe)).status, 200);
  await h.waitForApp('cafe', ['RUNNING']);
  await waitFor(async () => (await rawGet('/caf%C3%A9/x')).status === 200, 30_000, '/café routable');
  assert.equal((await rawGet('/caf%C3%A9/x')).body.path, '/caf%C3%A9/x');
  const routes = (await (await fetch(`${h.http}/-/routes`)).json()) as Json;
  assert.equal(routes['/café'], 'cafe');
  assert.equal((await put(base)).status, 200);
  await waitFor(async () => (await appNames()).length === 2, 30_000, 'cafe deleted');
});

test('the proxy holds at most buffered_body_limit_bytes of request bodies; beyond it 503 with Retry-After', async () => {
  const uploads = 20;
  const results = await Promise.all(
    Array.from({ length: uploads }, () =>
      fetch(`${h.http}/hello/upload?sleep=3000`, { method: 'POST', body: Buffer.alloc(MIB, 'b') }).then(
        async (res) => ({
          status: res.status,
          retry: res.headers.get('retry-after'),
          body: await res.json(),
        }),
      ),
    ),
  );
  const ok = results.filter((r) => r.status === 200);
  const busy = results.filter((r) => r.status === 503);
  assert.equal(ok.length + busy.length, uploads);
  assert.ok(ok.length >= 1 && ok.length <= 4, `${ok.length} uploads held at once fit 4 MiB`);
  assert.ok(busy.length >= uploads - 4);
  for (const r of ok) assert.equal((r.body as Json).bytes, MIB);
  for (const r of busy) {
    assert.equal(r.retry, '1');
    assert.equal((r.body as Json).code, 'RL_UNAVAILABLE');
  }
  assert.ok(h.head.proxy.bufferedBytes.peak <= 4 * MIB, `peak ${h.head.proxy.bufferedBytes.peak}`);
  await waitFor(() => h.head.proxy.bufferedBytes.now === 0, 10_000, 'buffered bytes released');
  const tooLarge = await fetch(`${h.http}/hello/upload`, { method: 'POST', body: Buffer.alloc(MIB + 1) });
  assert.equal(tooLarge.status, 413);
  assert.equal(((await tooLarge.json()) as Json).code, 'RL_BODY_TOO_LARGE');
  await assertIntact();
});

test('a PUT with many applications answers promptly, builds a few at a time, and the proxy stays fast', async (t) => {
  const many = {
    applications: [
      ...base.applications,
      ...Array.from({ length: 8 }, (_, i) => ({
        name: `many${i}`,
        route_prefix: `/many${i}`,
        import_path: 'hostile.ts:app',
      })),
    ],
  };
  const t0 = performance.now();
  assert.equal((await put(many)).status, 200);
  const putMs = performance.now() - t0;
  assert.ok(putMs < 2_000, `PUT answered in ${putMs.toFixed(0)} ms`);
  const latencies: number[] = [];
  let maxRunning = 0;
  let sawWaiting = false;
  while (true) {
    const { running, waiting } = h.head.controller.builds;
    maxRunning = Math.max(maxRunning, running);
    sawWaiting ||= waiting > 0;
    if (running + waiting === 0 && latencies.length >= 100) break;
    const s = performance.now();
    const res = await fetch(`${h.http}/hello/x`);
    await res.arrayBuffer();
    latencies.push(performance.now() - s);
    assert.equal(res.status, 200);
  }
  assert.ok(sawWaiting, 'builds waited for the pool');
  assert.ok(maxRunning <= 2, `at most 2 builds at once (saw ${maxRunning})`);
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)];
  t.diagnostic(`proxy p99 while building: ${p99.toFixed(1)} ms over ${latencies.length} requests`);
  assert.ok(p99 < 50, `proxy p99 while building ${p99.toFixed(1)} ms over ${latencies.length} requests`);
  for (let i = 0; i < 8; i++) await h.waitForApp(`many${i}`, ['RUNNING'], 120_000);
  assert.equal((await put(base)).status, 200);
  await waitFor(async () => (await appNames()).length === 2, 60_000, 'many apps deleted');
});

test('a head without a token refuses to bind beyond loopback unless told to', async () => {
  const make = (options: object) =>
    new Head({
      log: pino({ level: 'silent' }),
      output: process.stdout,
      logLevel: 'error',
      http: { host: '127.0.0.1', port: 0 },
      dashboardPort: 0,
      metricsPort: 0,
      baseDir: fixturesDir,
      ...options,
    });
  const exposed = make({ dashboardHost: '0.0.0.0' });
  await assert.rejects(exposed.start(), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'RL_BAD_REQUEST');
    assert.match(e.message, /REST API on 0\.0\.0\.0 \(--dashboard-host\)/);
    assert.match(e.message, /--allow-unauthenticated/);
    return true;
  });
  await exposed.stop();
  const cluster = make({ cluster: { host: '::', port: 0, ip: '::' } });
  await assert.rejects(cluster.start(), /cluster port on :: \(--node-ip-address\)/);
  await cluster.stop();
  const allowed = make({ dashboardHost: '0.0.0.0', allowUnauthenticated: true });
  const addresses = await allowed.start();
  assert.match(addresses.rest, /^http:\/\/0\.0\.0\.0:\d+$/, 'the address really bound is reported');
  await allowed.stop();
});

test('a draining head answers 503 with Retry-After, not 404', async () => {
  const stopping = h.head.stop();
  const res = await fetch(`${h.http}/hello/x`);
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal(((await res.json()) as Json).code, 'RL_UNAVAILABLE');
  await stopping;
});
