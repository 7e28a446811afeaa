import assert from 'node:assert/strict';
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
