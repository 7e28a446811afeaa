import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../observability/logger.ts';
import { Worker } from './worker.ts';

const sink = new Writable({ write: (_chunk, _encoding, done) => done() });

test("a worker's metrics port (its pod's probes) listens where its proxy does, not on loopback", async () => {
  // A head that is not there: the worker listens first and keeps trying to join in the background.
  const worker = new Worker({
    log: createLogger({ level: 'silent' }, sink),
    output: sink,
    headAddress: '127.0.0.1:1',
    nodeId: 'pod-like',
    ip: '127.0.0.1',
    resources: { CPU: 1 },
    labels: {},
    http: { host: '0.0.0.0', port: 0 },
    metricsPort: 0,
  });
  await worker.start();
  try {
    assert.equal((worker.proxy.server.server.address() as AddressInfo).address, '0.0.0.0');
    assert.equal((worker.metricsServer.server.address() as AddressInfo).address, '0.0.0.0');
  } finally {
    await worker.stop();
  }
});

test("a leaving node's proxy answers on open connections with Connection: close, then has none", async () => {
  const worker = new Worker({
    log: createLogger({ level: 'silent' }, sink),
    output: sink,
    headAddress: '127.0.0.1:1',
    nodeId: 'leaving',
    ip: '127.0.0.1',
    resources: { CPU: 1 },
    labels: {},
    http: { host: '127.0.0.1', port: 0 },
    metricsPort: 0,
  });
  await worker.start();
  const { port } = worker.proxy.server.server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) =>
    new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      request({ port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      })
        .on('error', reject)
        .end();
    });
  try {
    assert.deepEqual(await get('/-/routes'), { status: 200, connection: 'keep-alive' });
    const handingOff = worker.proxy.handOff(10_000);
    // The same kept-alive connection is still served, and told to close.
    assert.deepEqual(await get('/-/routes'), { status: 200, connection: 'close' });
    assert.deepEqual(await get('/-/healthz'), { status: 503, connection: 'close' });
    const started = Date.now();
    await handingOff;
    assert.ok(Date.now() - started < 5000, 'resolved once its connections closed, not at the timeout');
  } finally {
    agent.destroy();
    await worker.stop();
  }
});
