/** Runs a worker node in this process until SIGINT/SIGTERM, then drains its replicas and exits. */
import { hostname } from 'node:os';
import { createLogger, logDestination } from '../observability/logger.ts';
import { Worker } from '../runtime/worker.ts';
import type { NodeFlags } from './node-flags.ts';

export interface ForegroundWorkerOptions {
  headAddress: string;
  token?: string;
  nodeId?: string;
  ip: string;
  node: NodeFlags;
  proxyPort: number;
  metricsPort: number;
}

export async function runWorkerInForeground(options: ForegroundWorkerOptions): Promise<void> {
  const destination = logDestination({});
  const log = createLogger({}, destination);
  const worker = new Worker({
    log,
    output: destination as unknown as NodeJS.WritableStream,
    headAddress: options.headAddress,
    token: options.token,
    nodeId: options.nodeId ?? `${hostname()}-${process.pid}`,
    ip: options.ip,
    resources: options.node.resources,
    labels: options.node.labels,
    group: process.env.RAYLINE_GROUP,
    http: { port: options.proxyPort, host: options.ip === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0' },
    metricsPort: options.metricsPort,
    onRefused: (reason) => {
      log.fatal({ reason }, 'the head refused this node');
      process.exit(1);
    },
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal }, 'shutting down: draining replicas');
    worker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await worker.start();
}
