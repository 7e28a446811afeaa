/** Runs a head in this process until SIGINT/SIGTERM, then drains replicas and exits. */
import { createLogger, logDestination, pinoLevel } from '../observability/logger.ts';
import { Head } from '../runtime/head.ts';
import type { HttpOptions, ServeConfig } from '../schema/serve-config.ts';
import type { NodeFlags } from './node-flags.ts';

export interface ForegroundHeadOptions {
  config?: ServeConfig;
  http?: Partial<HttpOptions>;
  dashboardHost?: string;
  dashboardPort: number;
  metricsPort: number;
  token?: string;
  node?: NodeFlags;
}

export async function runHeadInForeground(options: ForegroundHeadOptions): Promise<void> {
  const logging = options.config?.logging_config;
  const destination = logDestination({ encoding: logging?.encoding });
  const log = createLogger({ level: logging?.log_level }, destination);
  const head = new Head({
    log,
    output: destination as unknown as NodeJS.WritableStream,
    logLevel: pinoLevel(logging?.log_level),
    http: options.config?.http_options ?? options.http,
    dashboardHost: options.dashboardHost,
    dashboardPort: options.dashboardPort,
    metricsPort: options.metricsPort,
    token: options.token,
    accessLog: logging?.enable_access_log ?? true,
    baseDir: process.cwd(),
    debug: process.env.RAYLINE_DEBUG === '1',
  });
  if (options.node && (Object.keys(options.node.resources).length > 0 || options.node.autoscalingProvider)) {
    // Declared for the cluster runtime; a single head places every replica, whatever it declares.
    log.warn(
      {
        resources: options.node.resources,
        labels: options.node.labels,
        autoscalingProvider: options.node.autoscalingProvider,
      },
      'node resources and the cluster autoscaler take effect with multi-node clusters, which this version does not run yet',
    );
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting without waiting for replicas');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: draining replicas');
    head.stop().then(
      () => process.exit(0),
      (error: Error) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  await head.start();
  if (options.config) {
    head.apply(options.config);
    head.waitForApplications(['RUNNING', 'DEPLOY_FAILED'], 10 * 60_000).then(
      () => {
        for (const app of Object.values(head.controller.applicationDetails())) {
          if (app.status === 'RUNNING')
            log.info(
              { app: app.name, route_prefix: app.route_prefix, url: head.addresses?.http },
              'application ready',
            );
          else log.error({ app: app.name }, `application failed: ${app.message}`);
        }
      },
      () => {},
    );
  }
}
