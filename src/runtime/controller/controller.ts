/**
 * The serve controller: holds the applied config, builds applications, owns every deployment's
 * state, and publishes routing tables to the proxy and to every replica whenever replicas change.
 * Applying a config is declarative: applications missing from it are deleted.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { RaylineError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ControllerMetrics } from '../../observability/metrics.ts';
import { deploymentOptionsSchema, mergeDeploymentConfig } from '../../schema/deployment-config.ts';
import type { ApplicationConfig, ServeConfig } from '../../schema/serve-config.ts';
import { CONTROL_LOOP_INTERVAL_S } from '../autoscaling/policy.ts';
import type { HeadCluster } from '../cluster/head-cluster.ts';
import type { ReplicaHandle } from '../node/replica-handle.ts';
import type { ResourceDemand } from '../placement/types.ts';
import type { QueuedCount } from '../replica/protocol.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import { type ApplicationState, applicationDetails, applicationStatus } from './application-state.ts';
import { BuildPool, type BuiltDeployment, buildApplication } from './builder.ts';
import { type DeploymentContext, DeploymentState, type DeploymentTarget } from './deployment-state.ts';
import { Placer } from './placer.ts';
import type { ApplicationDetails, ServeInstanceDetails } from './status.ts';

/** What `ServeController.plan` decided: applications to (re)deploy and to delete. */
export interface ApplyPlan {
  config: ServeConfig;
  deploy: { config: ApplicationConfig; key: string }[];
  remove: string[];
}

export interface AppRoute {
  routePrefix: string;
  app: string;
  ingress: string;
}

export interface ControllerOptions {
  cluster: HeadCluster;
  log: Logger;
  metrics: ControllerMetrics;
  logLevel: string;
  debug: boolean;
  /** Where relative working_dir values and a missing working_dir resolve. */
  baseDir: string;
  /** Replica log lines go here. */
  output: NodeJS.WritableStream;
  /**
   * After a head restart: replicas neither start nor stop, and no routing table goes out (workers
   * keep serving with their last ones), until the nodes that were in the cluster have re-registered
   * and reported their replicas, or the deadline passes.
   */
  recovery?: { nodeIds: string[]; deadlineMs: number };
  /** Calls waiting at callers in this process (the proxy), for autoscaling. */
  callerQueued(): QueuedCount[];
  /** Build processes at once; default the machine's cores. */
  buildConcurrency?: number;
}

/** How long a reported replica may wait for its deployment to claim it, once every app is built. */
const ORPHAN_GRACE_MS = 2_000;
/** The same while the head has no config at all (waiting for the operator to re-submit it). */
const UNCONFIGURED_ORPHAN_GRACE_MS = 120_000;

/** Replica load reports older than this are ignored (Ray: max(2 x metrics_interval_s, 10 s)). */
const LOAD_REPORT_STALE_MS = 10_000;

const hash = (value: unknown) =>
  createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);

export class ServeController {
  readonly #apps = new Map<string, ApplicationState>();
  readonly #options: ControllerOptions;
  readonly #ctx: DeploymentContext;
  #config: ServeConfig | undefined;
  #scheduled = false;
  /** Set by detach(): this head is leaving and changes nothing any more. */
  #detached = false;
  #ticker: NodeJS.Timeout;
  #autoscaleTicker: NodeJS.Timeout;
  #lastPublished = '';
  readonly #placer: Placer;
  readonly #builds: BuildPool;
  /**
   * Workers keep the tables of a head that restarted until this head's first table, which goes out
   * only after the first apply (or delete) and once every application is built: before that, its
   * applications have no deployments and the table would empty theirs.
   */
  #applied = false;
  #publishedOnce = false;
  #recovery: ControllerOptions['recovery'];

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.#recovery = options.recovery;
    const { cluster } = options;
    this.#placer = new Placer(() => cluster.placeableNodes());
    this.#builds = new BuildPool(options.buildConcurrency ?? availableParallelism());
    this.#ctx = {
      place: (requests) => this.#placer.place(requests),
      release: (id) => this.#placer.release(id),
      adopt: (app, deployment, version) => cluster.claimOrphans(app, deployment, version),
      nodeIp: (id) => cluster.node(id)?.ip ?? '',
      log: options.log,
      metrics: options.metrics,
      logLevel: options.logLevel,
      debug: options.debug,
      routes: () => this.routes(),
      changed: () => this.#schedule(),
    };
    // Events drive reconciliation; the periodic tick is the safety net for anything missed.
    this.#ticker = setInterval(() => this.#schedule(), 1000);
    this.#ticker.unref();
    this.#autoscaleTicker = setInterval(() => this.#autoscale(), CONTROL_LOOP_INTERVAL_S * 1000);
    this.#autoscaleTicker.unref();
  }

  /** Application builds running now and waiting for a slot in the pool. */
  get builds(): { running: number; waiting: number; size: number } {
    return { running: this.#builds.running, waiting: this.#builds.waiting, size: this.#builds.size };
  }

  /** Something outside changed (a node came or went): reconcile soon. */
  changed(): void {
    this.#schedule();
  }

  get config(): ServeConfig | undefined {
    return this.#config;
  }

  /**
   * What applying a validated config would change, computed without changing anything: anything
   * that can fail fails here, before `commit`. Comparisons use each application's config as text,
   * computed once (the schema bounds its size).
   */
  plan(config: ServeConfig): ApplyPlan {
    const deploy: { config: ApplicationConfig; key: string }[] = [];
    const listed = new Set<string>();
    for (const app of config.applications) {
      listed.add(app.name);
      const key = JSON.stringify(app);
      const existing = this.#apps.get(app.name);
      const unchanged = existing && !existing.deleting && existing.configKey === key;
      // Re-applying the same config retries an application that failed (the user may have fixed the code).
      if (unchanged && applicationStatus(existing).status !== 'DEPLOY_FAILED') continue;
      deploy.push({ config: app, key });
    }
    const remove = [...this.#apps.values()].filter((a) => !listed.has(a.name)).map((a) => a.name);
    return { config, deploy, remove };
  }

  /** Makes a plan the controller's goal: new or changed applications deploy, missing ones are deleted. */
  commit(plan: ApplyPlan): void {
    this.#config = plan.config;
    this.#applied = true;
    for (const { config, key } of plan.deploy) this.#deploy(config, key, this.#apps.get(config.name));
    for (const name of plan.remove) {
      const app = this.#apps.get(name);
      if (app) this.#delete(app);
    }
    this.#schedule();
  }

  /** Plans and commits a validated config. */
  apply(config: ServeConfig): void {
    this.commit(this.plan(config));
  }

  /** Deletes every application (REST DELETE, `serve shutdown`). */
  deleteAll(): void {
    this.#config = undefined;
    this.#applied = true;
    for (const app of this.#apps.values()) this.#delete(app);
    this.#schedule();
  }

  #deploy(config: ApplicationConfig, configKey: string, existing: ApplicationState | undefined): void {
    const app: ApplicationState = existing ?? {
      name: config.name,
      config,
      configKey,
      generation: 0,
      building: false,
      buildError: '',
      ingress: undefined,
      deployments: new Map(),
      deleting: false,
      draining: [],
      lastDeployedTimeS: 0,
    };
    app.config = config;
    app.configKey = configKey;
    app.generation++;
    app.building = true;
    app.buildError = '';
    app.deleting = false;
    app.lastDeployedTimeS = Date.now() / 1000;
    this.#apps.set(config.name, app);
    const generation = app.generation;
    const workingDir = resolve(this.#options.baseDir, config.runtime_env.working_dir ?? '.');
    const env = config.runtime_env.env_vars ?? {};
    this.#options.log.info({ app: config.name, import_path: config.import_path }, 'deploying application');
    if (!existsSync(workingDir)) {
      this.#failBuild(app, `runtime_env.working_dir '${workingDir}' does not exist`);
      return;
    }
    // Builds wait for a slot in the pool; one whose config was replaced meanwhile never starts.
    this.#builds
      .run(
        () =>
          buildApplication(
            { importPath: config.import_path, workingDir, args: config.args },
            env,
            this.#options.output,
          ),
        () => app.generation !== generation,
      )
      .then(
        (built) => {
          if (built === undefined || app.generation !== generation) return;
          try {
            this.#applyGraph(app, built, workingDir, env);
          } catch (error) {
            this.#failBuild(app, (error as Error).message);
          }
        },
        (error: Error) => {
          if (app.generation === generation) this.#failBuild(app, error.message);
        },
      );
  }

  #failBuild(app: ApplicationState, message: string): void {
    app.building = false;
    app.buildError = message;
    this.#options.log.error({ app: app.name }, `application failed to deploy: ${message}`);
    this.#schedule();
  }

  #applyGraph(
    app: ApplicationState,
    built: BuiltDeployment[],
    workingDir: string,
    env: Record<string, string>,
  ): void {
    const { config } = app;
    const names = built.map((d) => d.name);
    config.deployments.forEach((override, i) => {
      if (!names.includes(override.name)) {
        throw new RaylineError(
          'RL_CONFIG_INVALID',
          `applications[${app.name}].deployments[${i}].name: '${override.name}' is not a deployment of this application (it has ${names.join(', ')})`,
        );
      }
    });
    // The resolved directory, not the spelling: the same file applied by `serve run` and `serve deploy`
    // is the same version.
    const codeVersion = hash({ import_path: config.import_path, args: config.args, workingDir, env });
    const targets = new Map<string, DeploymentTarget>();
    for (const d of built) {
      const override = config.deployments.find((o) => o.name === d.name);
      const merged = mergeDeploymentConfig(
        deploymentOptionsSchema.parse(d.codeOptions),
        override ? deploymentOptionsSchema.parse(override) : {},
      );
      targets.set(d.name, {
        config: merged,
        version: hash([
          codeVersion,
          merged.ray_actor_options,
          merged.placement_group_bundles,
          merged.placement_group_strategy,
        ]),
        importPath: config.import_path,
        workingDir,
        args: config.args,
        env,
        route: config.route_prefix ?? '',
      });
    }
    for (const [name, state] of app.deployments) {
      if (!targets.has(name)) state.deleting = true;
    }
    for (const [name, target] of targets) {
      const state = app.deployments.get(name);
      if (state && !state.deleting) {
        state.update(target);
        continue;
      }
      // A deployment still draining from a deletion finishes draining beside its successor.
      if (state) app.draining.push(state);
      app.deployments.set(name, new DeploymentState(app.name, name, target, this.#ctx));
    }
    app.ingress = built.find((d) => d.isIngress)?.name;
    app.building = false;
    this.#schedule();
  }

  #delete(app: ApplicationState): void {
    app.deleting = true;
    app.generation++;
    app.building = false;
    for (const d of app.deployments.values()) d.deleting = true;
  }

  #schedule(): void {
    if (this.#scheduled || this.#detached) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#reconcile();
    });
  }

  /** True while a restarted head waits for its nodes to report what they run. */
  get recovering(): boolean {
    const r = this.#recovery;
    if (!r) return false;
    const back = r.nodeIds.every((id) => this.#options.cluster.node(id) !== undefined);
    if (back || Date.now() > r.deadlineMs) {
      this.#options.log.info(
        { nodes: r.nodeIds.length, allBack: back },
        'recovery finished: reconciling with what the nodes reported',
      );
      this.#recovery = undefined;
      return false;
    }
    return true;
  }

  /** One reconcile pass now, as the periodic tick runs it (for benchmarks). */
  tick(): void {
    this.#reconcile();
  }

  #reconcile(): void {
    this.#reserveOrphans();
    if (this.recovering) return;
    for (const app of [...this.#apps.values()]) {
      for (const [name, d] of app.deployments) {
        d.reconcile();
        if (d.deleting && d.isEmpty) app.deployments.delete(name);
      }
      for (const d of app.draining) d.reconcile();
      app.draining = app.draining.filter((d) => !d.isEmpty);
      if (app.deleting && app.deployments.size === 0 && app.draining.length === 0) {
        this.#apps.delete(app.name);
        this.#options.log.info({ app: app.name }, 'application deleted');
      }
    }
    this.#stopUnclaimedOrphans();
    this.#publish();
  }

  /**
   * Reported replicas hold their resources from the moment their node reports them, so nothing new
   * is placed on their GPUs while they wait to be adopted; one that overcommits its node is stopped.
   */
  #reserveOrphans(): void {
    for (const orphan of this.#options.cluster.unreservedOrphans()) {
      const id = orphan.report.spec.replicaId;
      const conflict = this.#placer.reserve(orphan);
      if (conflict) {
        this.#options.log.warn(
          { replica: id, node: orphan.replica.nodeId },
          `stopping a reported replica: ${conflict}`,
        );
        this.#options.cluster.dropOrphan(orphan);
        orphan.replica.stop(0, 5);
        continue;
      }
      orphan.reserved = true;
      // Until a deployment adopts it (and takes over this hook), its exit frees what it held.
      orphan.replica.onExit = () => this.#placer.release(id);
    }
  }

  /**
   * Replicas reported by workers that no deployment adopted: once every application is built they
   * belong to nothing (an older version, a deleted app). Without any config, the operator or the
   * user may still re-submit it, so they get longer.
   */
  #stopUnclaimedOrphans(): void {
    const cluster = this.#options.cluster;
    if (cluster.orphanCount === 0) return;
    const building = [...this.#apps.values()].some((a) => a.building);
    const now = Date.now();
    cluster.stopOrphans((o) =>
      this.#config
        ? !building && now - o.sinceMs > ORPHAN_GRACE_MS
        : now - o.sinceMs > UNCONFIGURED_ORPHAN_GRACE_MS,
    );
  }

  /**
   * One control-loop tick: each autoscaling deployment gets the requests running in its replicas
   * plus those queued at every caller (the proxy here, handles in replicas' reports).
   */
  #autoscale(): void {
    const now = Date.now();
    const queued = new Map<string, number>();
    const add = ([app, deployment, n]: QueuedCount) => {
      const k = `${app}\u0000${deployment}`;
      queued.set(k, (queued.get(k) ?? 0) + n);
    };
    for (const q of this.#options.callerQueued()) add(q);
    const fresh = (p: ReplicaHandle) =>
      p.load && now - p.load.atMs < LOAD_REPORT_STALE_MS ? p.load : undefined;
    for (const p of this.replicaProcesses()) for (const q of fresh(p)?.queued ?? []) add(q);
    const { metrics } = this.#options;
    for (const app of this.#apps.values()) {
      for (const d of app.deployments.values()) {
        if (!d.autoscaler || d.deleting) continue;
        let total = queued.get(`${app.name}\u0000${d.name}`) ?? 0;
        for (const r of d.running) total += fresh(r.process)?.ongoing ?? 0;
        d.autoscale(now, total);
        const labels = { deployment: d.name, application: app.name };
        metrics.autoscalingTarget.set(labels, d.autoscaler.target);
        metrics.autoscalingDesired.set(labels, d.autoscaler.desired);
      }
    }
  }

  routes(): DeploymentRoute[] {
    const routes: DeploymentRoute[] = [];
    for (const app of this.#apps.values()) {
      for (const d of app.deployments.values()) if (!d.deleting) routes.push(d.route());
    }
    return routes;
  }

  #appRoutes(): AppRoute[] {
    const out: AppRoute[] = [];
    for (const app of this.#apps.values()) {
      const prefix = app.config.route_prefix;
      if (app.deleting || !app.ingress || prefix === null) continue;
      out.push({ routePrefix: prefix, app: app.name, ingress: app.ingress });
    }
    return out;
  }

  #publish(): void {
    if (!this.#applied) return;
    if (!this.#publishedOnce) {
      if ([...this.#apps.values()].some((a) => a.building)) return;
      this.#publishedOnce = true;
    }
    const routes = this.routes();
    const appRoutes = this.#appRoutes();
    const location = this.#config?.proxy_location ?? 'EveryNode';
    const snapshot = JSON.stringify([routes, appRoutes, location]);
    if (snapshot === this.#lastPublished) return;
    this.#lastPublished = snapshot;
    this.#options.cluster.publish(routes, appRoutes, location);
  }

  /** Replicas placed on a node, and what is left there, for the cluster autoscaler. */
  nodeUsage(nodeId: string): { replicas: number; available: Record<string, number> | undefined } {
    return { replicas: this.#placer.replicasOn(nodeId), available: this.#placer.available(nodeId) };
  }

  /** What the replicas that could not be placed wait for, for the cluster autoscaler. */
  unplacedDemand(): ResourceDemand[] {
    const out: ResourceDemand[] = [];
    for (const app of this.#apps.values()) {
      for (const d of app.deployments.values()) for (const p of d.pending) out.push(p.demand);
    }
    return out;
  }

  replicaProcesses(): ReplicaHandle[] {
    const out: ReplicaHandle[] = [];
    for (const app of this.#apps.values()) {
      for (const d of [...app.deployments.values(), ...app.draining]) out.push(...d.replicaProcesses());
    }
    return out;
  }

  applicationDetails(): Record<string, ApplicationDetails> {
    return Object.fromEntries([...this.#apps.values()].map((app) => [app.name, applicationDetails(app)]));
  }

  details(): ServeInstanceDetails {
    const { id: nodeId, ip: nodeIp } = this.#options.cluster.local;
    const config = this.#config;
    const proxies: ServeInstanceDetails['proxies'] = {};
    const location = config?.proxy_location ?? 'EveryNode';
    for (const node of this.#options.cluster.nodes()) {
      const serves =
        location === 'EveryNode' || (location === 'HeadOnly' && node === this.#options.cluster.local);
      if (node.proxyHealthy === undefined || !serves) continue;
      proxies[node.id] = {
        node_id: node.id,
        node_ip: node.ip,
        actor_id: `proxy-${node.id}`,
        actor_name: `SERVE_PROXY_ACTOR-${node.id}`,
        status: node.proxyHealthy ? 'HEALTHY' : 'STARTING',
      };
    }
    return {
      controller_info: {
        node_id: nodeId,
        node_ip: nodeIp,
        actor_id: `controller-${process.pid}`,
        actor_name: 'SERVE_CONTROLLER_ACTOR',
        worker_id: String(process.pid),
        log_file_path: null,
      },
      proxy_location: config?.proxy_location ?? 'EveryNode',
      http_options: (config?.http_options ?? {}) as Record<string, unknown>,
      grpc_options: {},
      proxies,
      deploy_mode: 'MULTI_APP',
      applications: this.applicationDetails(),
      target_capacity: config?.target_capacity ?? null,
    };
  }

  /**
   * Stops reconciling, scaling and building, and deletes nothing: a cluster head leaving (its pod
   * deleted, a restart) leaves the applications to the replicas on workers and to the next head.
   */
  detach(): void {
    this.#detached = true;
    this.#recovery = undefined;
    clearInterval(this.#ticker);
    clearInterval(this.#autoscaleTicker);
  }

  /** Resolves when every application is gone (all replicas drained and stopped). */
  async shutdown(): Promise<void> {
    this.#recovery = undefined;
    this.deleteAll();
    while (this.#apps.size > 0) {
      await Promise.all(this.replicaProcesses().map((p) => p.exited()));
      this.#reconcile();
      await new Promise((r) => setImmediate(r));
    }
    clearInterval(this.#ticker);
    clearInterval(this.#autoscaleTicker);
  }
}
