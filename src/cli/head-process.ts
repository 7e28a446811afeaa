/**
 * Runs a head in this process until SIGINT/SIGTERM. Then `serve run` drains and stops every
 * replica; a cluster head (`rayline start --head`) drains only its own node and leaves.
 */
import { RaylineError } from '../errors.ts';
import { createLogger, type Logger, logDestination, pinoLevel } from '../observability/logger.ts';
import { loadAutoscalingConfig } from '../runtime/autoscaler/autoscaling-config.ts';
import { Head } from '../runtime/head.ts';
import type { HttpOptions, ServeConfig } from '../schema/serve-config.ts';
import { startClusterAutoscaler } from './cluster-autoscaling.ts';
import type { NodeFlags } from './node-flags.ts';

export interface ForegroundHeadOptions {
  config?: ServeConfig;
  http?: Partial<HttpOptions>;
  dashboardHost?: string;
  dashboardPort: number;
  metricsPort: number;
  token?: string;
  /** Without a token, bind the REST API and cluster port beyond loopback anyway. */
  allowUnauthenticated?: boolean;
  node?: NodeFlags;
  nodeId?: string;
  /** `rayline start --head`: listen for workers (absent for `serve run`). */
  cluster?: { host: string; port: number; ip: string };
  stateDir?: string;
  autoscalingConfig?: string;
  /** logging_config.encoding as written in the config file, if it was. */
  logEncoding?: 'TEXT' | 'JSON';
  /**
   * `serve run`: whether applications that end DEPLOY_FAILED stop the head with exit code 1 (as
   * Ray's `serve run` exits), or leave it serving for the developer to fix and re-deploy.
   */
  exitOnDeployFailure?: boolean;
}

export interface ForegroundHead {
  head: Head;
  log: Logger;
}

/** The first line of a message, for a one-line summary (tracebacks stay in the log). */
const firstLine = (text: string) => text.split('\n')[0]!.trim();

export async function runHeadInForeground(options: ForegroundHeadOptions): Promise<ForegroundHead> {
  const logging = options.config?.logging_config;
  const destination = logDestination({ encoding: options.logEncoding });
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
    allowUnauthenticated: options.allowUnauthenticated,
    accessLog: logging?.enable_access_log ?? true,
    baseDir: process.cwd(),
    debug: process.env.RAYLINE_DEBUG === '1',
    nodeId: options.nodeId,
    // A cluster node offers what it declares or detects; `serve run` is not limited by it.
    resources: options.cluster ? (options.node?.resources ?? {}) : undefined,
    labels: options.node?.labels,
    cluster: options.cluster,
    stateDir: options.stateDir,
  });
  // Checked before anything starts, so a bad file fails the start with its field named.
  const autoscalingConfig = options.autoscalingConfig
    ? loadAutoscalingConfig(options.autoscalingConfig)
    : undefined;
  let autoscaling: { stop(): Promise<void> } | undefined;
  let stopping = false;
  const stop = (signal: string, exitCode = 0) => {
    if (stopping) {
      log.warn('second signal: exiting without waiting for replicas');
      process.exit(130);
    }
    stopping = true;
    // A cluster head leaves its cluster serving (the next head adopts the workers' replicas);
    // `serve run` owns its applications and takes them down with it.
    log.info(
      { signal },
      options.cluster ? 'leaving: draining this node only' : 'shutting down: draining replicas',
    );
    Promise.resolve(autoscaling?.stop())
      .then(() => (options.cluster ? head.leave() : head.stop()))
      .then(
        () => process.exit(exitCode),
        (error: Error) => {
          log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const addresses = await head.start();
  if (autoscalingConfig || options.node?.autoscalingProvider) {
    autoscaling = startClusterAutoscaler(head, {
      log,
      config: autoscalingConfig,
      // Workers connect to the address the head advertises, not the wildcard it may listen on.
      headAddress: `${options.cluster?.ip ?? '127.0.0.1'}:${addresses.cluster!.split(':').pop()}`,
      token: options.token,
    });
  }
  if (options.config) {
    head.apply(options.config);
    head.waitForApplications(['RUNNING', 'DEPLOY_FAILED'], 10 * 60_000).then(
      () => {
        const failed: string[] = [];
        for (const app of Object.values(head.controller.applicationDetails())) {
          if (app.status === 'RUNNING')
            log.info(
              { app: app.name, route_prefix: app.route_prefix, url: head.addresses?.http },
              'application ready',
            );
          else {
            log.error({ app: app.name }, `application failed: ${app.message}`);
            failed.push(`'${app.name}': ${firstLine(app.message)}`);
          }
        }
        if (failed.length > 0 && options.exitOnDeployFailure && !stopping) {
          const error = new RaylineError(
            'RL_DEPLOY_FAILED',
            `${failed.length === 1 ? 'application' : 'applications'} ${failed.join('; ')}; fix the code or config and run again, or pass --keep-running to stay up and re-deploy`,
          );
          process.stderr.write(`rayline: ${error.message} [${error.code}]\n`);
          stop('DEPLOY_FAILED', 1);
        }
      },
      () => {},
    );
  }
  return { head, log };
}
