/**
 * A head's controller and cluster table without a proxy or REST API, listening on a loopback port,
 * for tests and benchmarks that drive workers over the real cluster channel. Not part of the build.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { controllerMetrics } from '../../observability/metrics.ts';
import { ServeController } from '../controller/controller.ts';
import { LocalNode } from '../node/local-node.ts';
import { HeadCluster } from './head-cluster.ts';
import { LocalClusterNode } from './local-cluster-node.ts';

export async function controlPlaneOnly(options: {
  baseDir: string;
  nodeTimeoutMs: number;
}): Promise<{ cluster: HeadCluster; controller: ServeController; port: number }> {
  const log = pino({ level: 'silent' });
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const cluster: HeadCluster = new HeadCluster({
    // The head offers nothing: every replica goes to the workers under test.
    local: new LocalClusterNode({
      node: new LocalNode(sink, 'head'),
      ip: '127.0.0.1',
      resources: { CPU: 0 },
      gpuIds: [],
      labels: {},
      tcp: true,
      token: undefined,
      onPublish: () => {},
      proxyHealthy: () => true,
    }),
    log,
    nodeTimeoutMs: options.nodeTimeoutMs,
    onChange: () => controller.changed(),
  });
  const controller = new ServeController({
    cluster,
    log,
    metrics: controllerMetrics(new Registry()),
    logLevel: 'silent',
    debug: false,
    baseDir: options.baseDir,
    output: sink,
    callerQueued: () => [],
  });
  const port = Number((await cluster.listen('127.0.0.1', 0)).split(':').pop());
  return { cluster, controller, port };
}
