/**
 * Checks the operator tests' control plane against the real thing: the API server's version, reads
 * and writes through client-node, data surviving an API server restart, server-side validation, CRD
 * installation and a clean stop.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApiException, CoreV1Api } from '@kubernetes/client-node';
import { installCrds, type KubeTestEnv, startKubeTestEnv } from './env.ts';

let env: KubeTestEnv;
let core: CoreV1Api;
const namespace = 'env-test';

before(async () => {
  env = await startKubeTestEnv();
  core = env.kubeConfig.makeApiClient(CoreV1Api);
});

after(async () => {
  await env?.stop();
});

test('the API server is kube-apiserver v1.34.4 and kubectl reaches it', async () => {
  const result = await env.kubectl(['version', '-o', 'json']);
  assert.equal(result.code, 0, result.stderr);
  const version = JSON.parse(result.stdout) as {
    clientVersion: { gitVersion: string };
    serverVersion: { gitVersion: string };
  };
  assert.equal(version.serverVersion.gitVersion, 'v1.34.4');
  assert.equal(version.clientVersion.gitVersion, 'v1.34.4');
  assert.match(env.server, /^https:\/\/127\.0\.0\.1:\d+$/);
});

test('client-node creates a namespace and a ConfigMap and reads them back', async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'settings' }, data: { mode: 'test' } },
  });
  const ns = await core.readNamespace({ name: namespace });
  assert.equal(ns.status?.phase, 'Active');
  const cm = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
  assert.deepEqual(cm.data, { mode: 'test' });
  // The admin identity is in system:masters, so RBAC allows everything.
  const canI = await env.kubectl(['auth', 'can-i', '*', '*', '--all-namespaces']);
  assert.equal(canI.stdout.trim(), 'yes');
});

test('restartApiServer keeps the same address and the data in etcd', async () => {
  const before = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
  const server = env.server;
  await env.restartApiServer();
  assert.equal(env.server, server);
  const cm = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
  assert.deepEqual(cm.data, { mode: 'test' });
  assert.equal(cm.metadata?.uid, before.metadata?.uid);
});

test('server-side dry run rejects an invalid object and accepts a valid one without storing it', async () => {
  const service = (port: number): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'dry', namespace },
      spec: { ports: [{ port }] },
    });
  const invalid = await env.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: service(70000) });
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /Invalid value: 70000/);
  const valid = await env.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: service(80) });
  assert.equal(valid.code, 0, valid.stderr);
  await assert.rejects(
    core.readNamespacedService({ namespace, name: 'dry' }),
    (err: unknown) => err instanceof ApiException && err.code === 404,
  );
});

test('installCrds keeps schema extensions, defaults and enums, and waits for Established', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rayline-crds-'));
  try {
    await writeFile(path.join(dir, 'widgets.yaml'), widgetCrd);
    assert.deepEqual(await installCrds(env.kubeConfig, dir), ['widgets.example.rayline.dev']);
    const widget = (size: string): string =>
      JSON.stringify({
        apiVersion: 'example.rayline.dev/v1',
        kind: 'Widget',
        metadata: { name: `w-${size}`, namespace },
        spec: { size, extra: { kept: true } },
      });
    const created = await env.kubectl(['create', '-o', 'json', '-f', '-'], { input: widget('small') });
    assert.equal(created.code, 0, created.stderr);
    const spec = (JSON.parse(created.stdout) as { spec: Record<string, unknown> }).spec;
    assert.deepEqual(spec, { size: 'small', color: 'blue', extra: { kept: true } });
    const rejected = await env.kubectl(['create', '-f', '-'], { input: widget('huge') });
    assert.notEqual(rejected.code, 0);
    assert.match(rejected.stderr, /spec\.size: Unsupported value: "huge"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // A folder that does not exist yet installs nothing rather than failing.
  assert.deepEqual(await installCrds(env.kubeConfig, path.join(os.tmpdir(), 'rayline-no-such-crds')), []);
});

test('helm runs against the env', async () => {
  const version = await env.helm(['version', '--short']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^v3\.17\.0/);
  const list = await env.helm(['list', '--all-namespaces', '-o', 'json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
});

test('stop ends both processes and removes the folder', async () => {
  const dir = env.dir;
  await env.stop();
  assert.equal(existsSync(dir), false);
  assert.equal(await connectError(env.etcdUrl), 'ECONNREFUSED');
  assert.equal(await connectError(env.server), 'ECONNREFUSED');
});

function connectError(url: string): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

const widgetCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.rayline.dev
spec:
  group: example.rayline.dev
  scope: Namespaced
  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: string, enum: [small, large] }
                color: { type: string, default: blue }
                extra: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;
