/**
 * `rayline serve run`: a local head in the foreground with the applications deployed, or, with
 * --address, the applications deployed into a running head and followed until Ctrl-C. Exits 1 when
 * they fail to deploy (unless --keep-running), and re-deploys them when their files change (--reload).
 */
import { type FSWatcher, watch } from 'node:fs';
import type { Command } from 'commander';
import { RaylineError } from '../errors.ts';
import type { ServeRestClient } from '../runtime/rest/client.ts';
import type { ApplicationConfig, ServeConfig, ServeConfigInput } from '../schema/serve-config.ts';
import { configForRun } from './config-file.ts';
import { runHeadInForeground } from './head-process.ts';
import { checkPortsFree } from './port-check.ts';

export interface ServeRunOptions {
  host?: string;
  port?: number;
  routePrefix?: string;
  name?: string;
  dashboardPort: number;
  metricsPort: number;
  token?: string;
  address?: string;
  keepRunning?: boolean;
  nonBlocking?: boolean;
  reload?: boolean;
}

/** The env var whose change makes a reload restart an application's replicas (a new version). */
const RELOAD_ENV = 'RAYLINE_RELOAD';

export async function serveRun(
  target: string,
  options: ServeRunOptions,
  command: Command,
  client: (address: string) => ServeRestClient,
): Promise<void> {
  const { config, logEncoding } = configForRun(target, {
    routePrefix: options.routePrefix,
    name: options.name,
  });
  if (options.address) {
    const local = ['host', 'port', 'dashboardPort', 'metricsPort'].filter(
      (o) => command.getOptionValueSource(o) === 'cli',
    );
    if (local.length > 0) {
      const flags = local.map((o) => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      throw new RaylineError(
        'RL_BAD_REQUEST',
        `${flags.join(', ')} ${flags.length === 1 ? 'sets' : 'set'} the ports of a head that serve run starts; with --address the running head keeps its own: drop ${flags.length === 1 ? 'it' : 'them'}`,
      );
    }
    await runIntoHead(config, options, client(options.address));
    return;
  }
  if (options.nonBlocking) {
    throw new RaylineError(
      'RL_BAD_REQUEST',
      '--non-blocking needs --address: without it the head serve run starts lives in this process',
    );
  }
  if (options.host) config.http_options.host = options.host;
  if (options.port !== undefined) config.http_options.port = options.port;
  const token = options.token ?? process.env.RAYLINE_API_TOKEN;
  const http = config.http_options;
  await checkPortsFree(
    [
      { host: http.host, port: http.port, setBy: '--port or http_options.port' },
      { host: token ? '0.0.0.0' : '127.0.0.1', port: options.dashboardPort, setBy: '--dashboard-port' },
      { host: http.host, port: options.metricsPort, setBy: '--metrics-port' },
    ],
    `another head may be running here (deploy into it with --address http://127.0.0.1:${options.dashboardPort}), or choose free ports`,
  );
  const { head, log } = await runHeadInForeground({
    config,
    logEncoding,
    dashboardPort: options.dashboardPort,
    metricsPort: options.metricsPort,
    token,
    exitOnDeployFailure: !options.keepRunning && !options.reload,
  });
  if (options.reload) {
    watchForReload(config, (generation, file) => {
      log.info({ file, generation }, 'files changed: re-deploying the applications');
      head.apply(withReloadGeneration(config, generation));
    });
  }
}

/** Deploys into a running head next to its other applications, then follows them. */
async function runIntoHead(
  config: ServeConfig,
  options: ServeRunOptions,
  rest: ServeRestClient,
): Promise<void> {
  const ours = new Set(config.applications.map((a) => a.name));
  const deploy = async (applications: ApplicationConfig[]) => {
    const current = await rest.getApplications();
    const others = Object.values(current.applications)
      .filter((a) => !ours.has(a.name) && a.deployed_app_config)
      .map((a) => a.deployed_app_config);
    await rest.putApplications({ applications: [...others, ...applications] } as ServeConfigInput);
  };
  // Watching from before the first deploy: a change while it builds is not missed.
  if (options.reload) {
    watchForReload(config, async (generation, file) => {
      console.log(`${file} changed: re-deploying.`);
      try {
        await deploy(withReloadGeneration(config, generation).applications);
        const failures = await waitForDeploys(rest, ours);
        if (failures.length > 0) console.error(`rayline: ${failures.join('; ')}`);
        else console.log(`Applications ready: ${[...ours].join(', ')}.`);
      } catch (error) {
        console.error(`rayline: re-deploy failed: ${(error as Error).message}`);
      }
    });
  }
  await deploy(config.applications);
  console.log(`Deployed ${[...ours].map((n) => `'${n}'`).join(', ')} to ${rest.address}.`);
  const failed = await waitForDeploys(rest, ours);
  if (failed.length > 0) {
    if (!options.keepRunning && !options.reload) {
      throw new RaylineError(
        'RL_DEPLOY_FAILED',
        `${failed.join('; ')}; fix the code or config and run again${options.nonBlocking ? '' : ', or pass --keep-running to stay attached'}`,
      );
    }
    const next = options.reload ? 'waiting for its files to change' : 'staying attached (--keep-running)';
    console.error(`rayline: ${failed.join('; ')}; ${next} [RL_DEPLOY_FAILED]`);
  } else {
    console.log(`Applications ready: ${[...ours].join(', ')}.`);
  }
  if (options.nonBlocking) return;
  // Ctrl-C removes what this command deployed, and only that: other applications on the head are
  // someone else's (Ray's serve run shuts Serve down as a whole).
  await new Promise<void>((resolve) => {
    // Signal handlers do not keep a process alive; this timer does, until one arrives.
    const alive = setInterval(() => {}, 60_000);
    const leave = () => {
      clearInterval(alive);
      process.off('SIGINT', leave);
      process.off('SIGTERM', leave);
      resolve();
    };
    process.on('SIGINT', leave);
    process.on('SIGTERM', leave);
  });
  await deploy([]);
  console.log(`Removed ${[...ours].map((n) => `'${n}'`).join(', ')} from ${rest.address}.`);
  process.exit(0);
}

/** Waits until each named application is RUNNING or DEPLOY_FAILED; returns the failures, one line each. */
async function waitForDeploys(rest: ServeRestClient, names: Set<string>): Promise<string[]> {
  while (true) {
    const apps = (await rest.getApplications()).applications;
    const settled = [...names].map((n) => apps[n]);
    if (settled.every((a) => a && (a.status === 'RUNNING' || a.status === 'DEPLOY_FAILED'))) {
      return settled
        .filter((a) => a!.status === 'DEPLOY_FAILED')
        .map((a) => `application '${a!.name}' failed to deploy: ${a!.message.split('\n')[0]!.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The config with every application's replicas made a new version, so that they restart. */
function withReloadGeneration(config: ServeConfig, generation: number): ServeConfig {
  return {
    ...config,
    applications: config.applications.map((app) => ({
      ...app,
      runtime_env: {
        ...app.runtime_env,
        env_vars: { ...app.runtime_env.env_vars, [RELOAD_ENV]: String(generation) },
      },
    })),
  };
}

const ignored = /(^|\/)(node_modules|\.[^/]*)(\/|$)/;
/** Code and config: a log or data file written beside the code must not restart the applications. */
const watched = /\.([cm]?[jt]sx?|json|ya?ml)$/i;

/**
 * Watches every application's working_dir for changed code and config (node_modules and dot-files
 * aside) and calls back once per burst of changes, with a growing generation number.
 */
function watchForReload(config: ServeConfig, onChange: (generation: number, file: string) => void): void {
  const dirs = [...new Set(config.applications.map((a) => a.runtime_env.working_dir ?? process.cwd()))];
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastFile = '';
  const watchers: FSWatcher[] = dirs.map((dir) =>
    watch(dir, { recursive: true }, (_event, file) => {
      if (!file || ignored.test(file) || !watched.test(file)) return;
      lastFile = file;
      clearTimeout(timer);
      timer = setTimeout(() => onChange(++generation, lastFile), 200);
    }),
  );
  for (const w of watchers) w.unref();
}
