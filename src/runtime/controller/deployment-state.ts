/**
 * One deployment's replicas and status. `reconcile()` is level-triggered: it compares the target
 * (count, version) with the replicas that exist and starts or stops the difference. Replicas of an
 * older version are stopped only once enough of the current version run.
 */
import { randomBytes } from 'node:crypto';
import type { RaylineError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ControllerMetrics } from '../../observability/metrics.ts';
import {
  type DeploymentConfig,
  type RequestRouterConfig,
  requestRouterKind,
} from '../../schema/deployment-config.ts';
import { DeploymentAutoscaler } from '../autoscaling/deployment-autoscaler.ts';
import type { Orphan } from '../cluster/head-cluster.ts';
import type { ReplicaHandle } from '../node/replica-handle.ts';
import { gpuEnvironment, replicaRequest } from '../placement/index.ts';
import type { Pending } from '../placement/types.ts';
import type { DeploymentRoute } from '../router/deployment-router.ts';
import { DEFAULT_IMBALANCED_THRESHOLD, DEFAULT_MATCH_RATE_THRESHOLD } from '../router/prefix-affinity.ts';
import type { Placed } from './placer.ts';
import type { DeploymentDetails, DeploymentStatus, DeploymentStatusTrigger, ReplicaState } from './status.ts';

export interface DeploymentTarget {
  config: DeploymentConfig;
  /**
   * Changes when replicas must restart: import path, args, runtime env, resources. A module edited
   * on disk under an unchanged config is not noticed (as in Ray, where the code version is the config's).
   */
  version: string;
  importPath: string;
  workingDir: string;
  args: Record<string, unknown>;
  env: Record<string, string>;
  route: string;
}

interface ReplicaRecord {
  id: string;
  version: string;
  state: ReplicaState;
  process: ReplicaHandle;
  nodeId: string;
  nodeIp: string;
  startTimeS: number;
  healthFailures: number;
  healthTimer?: NodeJS.Timeout;
  readyAtS?: number;
}

/** A replica that exits by itself within this many seconds of starting counts as a failed start. */
const CRASH_LOOP_WINDOW_S = 10;

/** Consecutive failed health checks after which a replica is replaced (Ray's value). */
const MAX_HEALTH_FAILURES = 3;

export interface DeploymentContext {
  /** One scheduling pass for replicas this deployment wants to start. */
  place(requests: ReturnType<typeof replicaRequest>[]): { placed: Placed[]; pending: Pending[] };
  /** A replica stopped or died: what it held is free again. */
  release(replicaId: string): void;
  /** Running replicas of this version that a worker reported after a head restart. */
  adopt(app: string, deployment: string, version: string): Orphan[];
  nodeIp(nodeId: string): string;
  log: Logger;
  metrics: ControllerMetrics;
  logLevel: string;
  debug: boolean;
  /** The routing table as it is now, handed to new replicas. */
  routes(): DeploymentRoute[];
  /** Something changed: reconcile again and republish routes. */
  changed(): void;
}

export class DeploymentState {
  readonly app: string;
  readonly name: string;
  target: DeploymentTarget;
  status: DeploymentStatus = 'UPDATING';
  statusTrigger: DeploymentStatusTrigger = 'CONFIG_UPDATE_STARTED';
  message = '';
  deleting = false;
  autoscaler: DeploymentAutoscaler | undefined;
  /** Replicas wanted that no node can hold right now, with what they wait for. */
  pending: Pending[] = [];
  readonly #replicas: ReplicaRecord[] = [];
  #startFailures = 0;
  readonly #ctx: DeploymentContext;
  readonly #log: Logger;

  constructor(app: string, name: string, target: DeploymentTarget, ctx: DeploymentContext) {
    this.app = app;
    this.name = name;
    this.target = target;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ app, deployment: name });
    this.#syncAutoscaler();
  }

  /** Applies a new target; lightweight changes reach live replicas without a restart. */
  update(target: DeploymentTarget): void {
    const previous = this.target;
    this.target = target;
    this.#startFailures = 0;
    this.#syncAutoscaler();
    const live = previous.version === target.version;
    const p = previous.config;
    const c = target.config;
    if (
      live &&
      (JSON.stringify(p.user_config) !== JSON.stringify(c.user_config) ||
        p.max_ongoing_requests !== c.max_ongoing_requests)
    ) {
      for (const r of this.#replicas) {
        if (r.state !== 'STOPPING') r.process.reconfigure(c.user_config, c.max_ongoing_requests);
      }
    }
    if (this.status === 'DEPLOY_FAILED' || !live || p.num_replicas !== c.num_replicas) {
      this.#setStatus('UPDATING', 'CONFIG_UPDATE_STARTED');
      this.message = '';
    }
  }

  #syncAutoscaler(): void {
    const autoscaling = this.target.config.autoscaling_config;
    if (!autoscaling) this.autoscaler = undefined;
    else if (this.autoscaler) this.autoscaler.reconfigure(autoscaling);
    else this.autoscaler = new DeploymentAutoscaler(autoscaling);
  }

  /** Replicas this deployment should run now: the autoscaler's target, or num_replicas. */
  get targetReplicas(): number {
    if (this.deleting) return 0;
    return this.autoscaler ? this.autoscaler.target : this.target.config.num_replicas;
  }

  /** One control-loop tick of autoscaling; `totalRequests` is running plus queued, right now. */
  autoscale(nowMs: number, totalRequests: number): void {
    if (!this.autoscaler || this.deleting) return;
    const before = this.autoscaler.target;
    const { changed, target } = this.autoscaler.tick(nowMs, totalRequests, this.running.length);
    if (!changed) return;
    this.#log.info({ from: before, to: target }, 'autoscaling');
    // An update, a failure or an unhealthy deployment keeps its status; scaling shows otherwise.
    if (this.status === 'HEALTHY' || this.statusTrigger === 'AUTOSCALING') {
      this.#setStatus(target > before ? 'UPSCALING' : 'DOWNSCALING', 'AUTOSCALING');
    }
    this.#ctx.changed();
  }

  #setStatus(status: DeploymentStatus, trigger: DeploymentStatusTrigger): void {
    this.status = status;
    this.statusTrigger = trigger;
  }

  get running(): ReplicaRecord[] {
    return this.#replicas.filter((r) => r.state === 'RUNNING');
  }

  get isEmpty(): boolean {
    return this.#replicas.length === 0;
  }

  route(): DeploymentRoute {
    return {
      app: this.app,
      deployment: this.name,
      replicas: this.running.map((r) => ({
        replicaId: r.id,
        address: r.process.spec.address,
        nodeId: r.nodeId,
        ...(r.process.tcpAddress ? { tcpAddress: r.process.tcpAddress } : {}),
      })),
      maxOngoingRequests: this.target.config.max_ongoing_requests,
      maxQueuedRequests: this.target.config.max_queued_requests,
      ...(this.status === 'DEPLOY_FAILED' ? { unavailable: this.message } : {}),
      ...routerPolicy(this.target.config.request_router_config),
    };
  }

  replicaProcesses(): ReplicaHandle[] {
    return this.#replicas.map((r) => r.process);
  }

  /**
   * Converges replicas on the target. During an update (replicas of an older version exist), new
   * replicas start at most `surge` beyond the target (20% of it, at least one) and an old one stops
   * only when a new one runs, so capacity never drops; a new version that cannot start leaves the
   * old replicas serving.
   */
  reconcile(): void {
    const { version } = this.target;
    if (!this.deleting) {
      const adopted = this.#ctx.adopt(this.app, this.name, version);
      for (const orphan of adopted) this.#adopt(orphan);
      // A restarted head's autoscaler starts from its initial target: what runs is the better start.
      if (adopted.length > 0) this.autoscaler?.resume(this.running.length);
    }
    const wanted = this.targetReplicas;
    const alive = this.#replicas.filter((r) => r.state !== 'STOPPING');
    const current = alive.filter((r) => r.version === version);
    const outdated = alive.filter((r) => r.version !== version);
    const failed = this.#startFailures >= Math.min(3 * Math.max(wanted, 1), 20);
    const surge = Math.max(1, Math.floor(0.2 * wanted));

    // Old replicas still starting serve nobody: stop them at once.
    for (const r of outdated) if (r.state !== 'RUNNING') this.#stop(r);
    const outdatedRunning = outdated.filter((r) => r.state === 'RUNNING');
    // During an update, new and old together stay within target + surge.
    const room =
      outdatedRunning.length === 0
        ? wanted
        : Math.max(0, Math.min(wanted, wanted + surge - outdatedRunning.length));
    this.pending = [];
    if (!failed && current.length < room) this.#start(room - current.length);
    if (this.pending.length === 0 && this.message.includes('waiting for resources')) this.message = '';
    // Surplus of the current version: stop the ones still starting first, then the newest.
    const surplus = current
      .sort(
        (a, b) =>
          Number(b.state === 'STARTING') - Number(a.state === 'STARTING') || b.startTimeS - a.startTimeS,
      )
      .slice(0, Math.max(0, current.length - room));
    for (const r of surplus) this.#stop(r);
    const currentRunning = current.filter((r) => r.state === 'RUNNING' && !surplus.includes(r)).length;
    // Running old replicas leave one for one as new ones run (all at once when deleting or scaled to
    // zero); while the new version fails to start, they keep serving.
    const oldToStop =
      failed && !this.deleting ? 0 : Math.max(0, currentRunning + outdatedRunning.length - wanted);
    for (const r of outdatedRunning.slice(0, oldToStop)) this.#stop(r);

    if (this.deleting) return;
    if (failed) {
      this.#setStatus('DEPLOY_FAILED', 'REPLICA_STARTUP_FAILED');
    } else if (currentRunning === wanted && outdatedRunning.length === oldToStop) {
      if (this.status !== 'HEALTHY') {
        this.#log.info({ replicas: wanted }, 'deployment healthy');
        const trigger =
          this.status === 'UPSCALING'
            ? 'UPSCALE_COMPLETED'
            : this.status === 'DOWNSCALING'
              ? 'DOWNSCALE_COMPLETED'
              : this.status === 'UNHEALTHY'
                ? 'UNSPECIFIED'
                : 'CONFIG_UPDATE_COMPLETED';
        this.#setStatus('HEALTHY', trigger);
        this.message = '';
      }
    } else if (this.status === 'HEALTHY') {
      this.#setStatus('UPDATING', 'CONFIG_UPDATE_STARTED');
    }
  }

  #start(count: number): void {
    const t = this.target;
    const key = `${this.app}/${this.name}`;
    const requests = Array.from({ length: count }, () =>
      replicaRequest(randomBytes(4).toString('hex'), key, t.config),
    );
    const { placed, pending } = this.#ctx.place(requests);
    this.pending = pending;
    if (pending.length > 0) {
      this.message = `${pending.length} replica${pending.length === 1 ? '' : 's'} waiting for resources: ${pending[0].reason}`;
    }
    for (const { placement, node } of placed) {
      const id = placement.replicaId;
      const replica = node.replica({
        spec: {
          replicaId: id,
          app: this.app,
          deployment: this.name,
          route: t.route,
          importPath: t.importPath,
          workingDir: t.workingDir,
          args: t.args,
          userConfig: t.config.user_config,
          maxOngoingRequests: t.config.max_ongoing_requests,
          logLevel: this.#ctx.logLevel,
          debug: this.#ctx.debug,
        },
        env: { ...t.env, ...gpuEnvironment(placement.gpuIds) },
        cwd: t.workingDir,
        version: t.version,
        grants: placement.grants,
      });
      const record = this.#track(id, replica, node.id, node.ip, 'STARTING');
      replica.start(this.#ctx.routes()).then(
        () => {
          if (record.state === 'STARTING') this.#running(record);
        },
        (error: Error) => {
          if (record.state !== 'STARTING') return;
          // A node that went away says nothing about the code: start it elsewhere, uncounted.
          if ((error as RaylineError).code !== 'RL_NODE_LOST') this.#startFailures++;
          this.message = `replica ${id} failed to start: ${error.message}`;
          this.#log.error({ replica: id, failures: this.#startFailures }, this.message);
          replica.kill();
        },
      );
    }
  }

  /** A replica that already runs (reported by its node after a head restart) joins as it is. */
  /** A replica that already runs (reserved in the ledger when its node reported it) joins as it is. */
  #adopt({ replica, report }: Orphan): void {
    this.#log.info({ replica: report.spec.replicaId, node: replica.nodeId }, 'adopted a running replica');
    const node = replica.nodeId;
    const record = this.#track(report.spec.replicaId, replica, node, this.#ctx.nodeIp(node), 'STARTING');
    this.#running(record);
  }

  #track(
    id: string,
    replica: ReplicaHandle,
    nodeId: string,
    nodeIp: string,
    state: ReplicaState,
  ): ReplicaRecord {
    const labels = { deployment: this.name, replica: id, application: this.app };
    const record: ReplicaRecord = {
      id,
      version: this.target.version,
      state,
      process: replica,
      nodeId,
      nodeIp,
      startTimeS: Date.now() / 1000,
      healthFailures: 0,
    };
    this.#replicas.push(record);
    this.#ctx.metrics.starts.inc(labels);
    this.#ctx.metrics.healthy.set(labels, 0);
    replica.onExit = (code, signal) => {
      clearTimeout(record.healthTimer);
      this.#ctx.release(id);
      this.#ctx.metrics.healthy.remove(labels);
      const index = this.#replicas.indexOf(record);
      if (index !== -1) this.#replicas.splice(index, 1);
      if (record.state === 'RUNNING') {
        const ranS = Date.now() / 1000 - (record.readyAtS ?? record.startTimeS);
        const how =
          signal === 'NODE_LOST'
            ? `was lost with its node ${nodeId}`
            : signal
              ? `was killed (${signal})`
              : `exited with code ${code}`;
        this.#log.warn({ replica: id, code, signal, ranS }, 'replica process died; replacing it');
        this.#setStatus('UNHEALTHY', 'HEALTH_CHECK_FAILED');
        this.message = `replica ${id} ${how} after ${ranS.toFixed(1)} s; replacing it`;
        // Exiting on its own right after start is a failed start, so a crash loop ends in
        // DEPLOY_FAILED. A kill from outside (a signal: OOM killer, chaos) is replaced without counting.
        if (ranS < CRASH_LOOP_WINDOW_S && signal === null) this.#startFailures++;
      }
      this.#ctx.changed();
    };
    return record;
  }

  #running(record: ReplicaRecord): void {
    const labels = { deployment: this.name, replica: record.id, application: this.app };
    record.state = 'RUNNING';
    record.readyAtS = Date.now() / 1000;
    // Start failures are forgiven once a replica has stayed up past the crash-loop window.
    const stable = setTimeout(() => {
      if (record.state === 'RUNNING') this.#startFailures = 0;
    }, CRASH_LOOP_WINDOW_S * 1000);
    stable.unref();
    this.#ctx.metrics.healthy.set(labels, 1);
    this.#scheduleHealthCheck(record, labels);
    this.#ctx.changed();
  }

  /** checkHealth() every health_check_period_s; three failures in a row replace the replica. */
  #scheduleHealthCheck(record: ReplicaRecord, labels: Record<string, string>): void {
    const c = this.target.config;
    record.healthTimer = setTimeout(async () => {
      if (record.state !== 'RUNNING') return;
      const started = performance.now();
      const { ok, message } = await record.process.checkHealth(
        this.target.config.health_check_timeout_s * 1000,
      );
      this.#ctx.metrics.healthCheckLatency.observe(labels, performance.now() - started);
      if (record.state !== 'RUNNING') return;
      if (ok) {
        record.healthFailures = 0;
      } else {
        record.healthFailures++;
        this.#log.warn(
          { replica: record.id, failures: record.healthFailures },
          `health check failed: ${message}`,
        );
        if (record.healthFailures >= MAX_HEALTH_FAILURES) {
          this.#ctx.metrics.healthy.set(labels, 0);
          this.status = 'UNHEALTHY';
          this.statusTrigger = 'HEALTH_CHECK_FAILED';
          this.message = `replica ${record.id} failed ${MAX_HEALTH_FAILURES} health checks in a row (${message}); replacing it`;
          this.#stop(record);
          return;
        }
      }
      this.#scheduleHealthCheck(record, labels);
    }, c.health_check_period_s * 1000);
    record.healthTimer.unref();
  }

  #stop(record: ReplicaRecord): void {
    if (record.state === 'STOPPING') return;
    clearTimeout(record.healthTimer);
    const wasRunning = record.state === 'RUNNING';
    record.state = 'STOPPING';
    if (!wasRunning) {
      record.process.kill();
      return;
    }
    const c = this.target.config;
    // The replica refuses new calls from now on (callers route them elsewhere), leaves the routing
    // table at the next publish, and drains what it runs.
    this.#ctx.changed();
    record.process.stop(c.graceful_shutdown_wait_loop_s, c.graceful_shutdown_timeout_s);
  }

  details(): DeploymentDetails {
    const c = this.target.config;
    return {
      name: this.name,
      status: this.status,
      status_trigger: this.statusTrigger,
      message: this.message,
      deployment_config: { name: this.name, ...c },
      target_num_replicas: this.targetReplicas,
      required_resources: {
        CPU: c.ray_actor_options.num_cpus ?? 1,
        ...(c.ray_actor_options.num_gpus ? { GPU: c.ray_actor_options.num_gpus } : {}),
        ...(c.ray_actor_options.memory ? { memory: c.ray_actor_options.memory } : {}),
        ...c.ray_actor_options.resources,
      },
      replicas: this.#replicas.map((r) => ({
        replica_id: r.id,
        state: r.state,
        pid: r.process.pid ?? null,
        actor_name: `SERVE_REPLICA::${this.app}#${this.name}#${r.id}`,
        node_id: r.nodeId,
        node_ip: r.nodeIp,
        start_time_s: r.startTimeS,
      })),
    };
  }
}

/** The route's `router`, which every caller applies; none for power of two choices. */
function routerPolicy(config: RequestRouterConfig): Pick<DeploymentRoute, 'router'> {
  if (requestRouterKind(config.request_router_class ?? 'pow2') !== 'prefix_cache_affinity') return {};
  const kwargs = config.request_router_kwargs;
  return {
    router: {
      kind: 'prefix_cache_affinity',
      imbalancedThreshold: kwargs?.imbalanced_threshold ?? DEFAULT_IMBALANCED_THRESHOLD,
      matchRateThreshold: kwargs?.match_rate_threshold ?? DEFAULT_MATCH_RATE_THRESHOLD,
    },
  };
}
