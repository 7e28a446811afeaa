/**
 * The operator process: informers for RayServices, RayClusters and the pods and services they own,
 * one work queue per controller, leader election, metrics and probes. Caches run on every replica
 * (so a successor starts warm); only the leader reconciles, and it stops the moment it loses the
 * lease.
 */
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { operatorMetrics } from '../observability/metrics.ts';
import { ServeRestClient } from '../runtime/rest/client.ts';
import type { RayCluster } from '../schema/raycluster.ts';
import type { RayService } from '../schema/rayservice.ts';
import { KubeClient } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { Expectations } from './kube/expectations.ts';
import { Informer } from './kube/informer.ts';
import { LeaderElector, type LeaderElectorOptions } from './kube/leader-election.ts';
import {
  type KubeObject,
  objectKey,
  Pods,
  RayClusters,
  RayServices,
  Secrets,
  Services,
} from './kube/resources.ts';
import { type ReconcileResult, runWorkers, WorkQueue } from './kube/work-queue.ts';
import { type ProbeServers, startProbeServers } from './probe-server.ts';
import type { Pod, Service } from './raycluster/kube-types.ts';
import {
  headServiceName,
  LABEL_CLUSTER,
  LABEL_CREATED_BY,
  OPERATOR_NAME,
  ports,
  tokenSecretName,
} from './raycluster/labels.ts';
import { type BuildOptions, defaultBuildOptions } from './raycluster/pod-builder.ts';
import { RayClusterReconciler } from './raycluster/reconciler.ts';
import { LABEL_ORIGIN } from './rayservice/builders.ts';
import { RayServiceReconciler } from './rayservice/reconciler.ts';

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Namespaces to watch; empty: all. */
  namespaces: readonly string[];
  leaderElection?: Pick<
    LeaderElectorOptions,
    'namespace' | 'name' | 'identity' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'
  >;
  host?: string;
  metricsPort: number;
  healthPort: number;
  concurrency?: number;
  build?: BuildOptions;
  /** Requeue intervals of the reconcilers (tests shorten them). */
  busyRequeueMs?: number;
  idleRequeueMs?: number;
  /**
   * The REST address of a cluster's head. Default: its head service's cluster DNS name; tests point
   * it at a head they run on loopback.
   */
  headAddress?: (cluster: RayCluster) => string;
  /** Give each cluster a NetworkPolicy admitting its REST API only from this (the operator's) namespace. */
  dashboardPolicyNamespace?: string;
}

interface Controller {
  name: 'raycluster' | 'rayservice';
  reconcile(key: string): Promise<ReconcileResult>;
  keys(): string[];
}

export class Operator {
  readonly #options: OperatorOptions;
  readonly #log: Logger;
  readonly #client: KubeClient;
  readonly registry = new Registry();
  readonly #metrics = operatorMetrics(this.registry);
  readonly #rayServices: Informer<RayService & KubeObject>;
  readonly #clusters: Informer<RayCluster & KubeObject>;
  readonly #pods: Informer<Pod & KubeObject>;
  readonly #services: Informer<Service & KubeObject>;
  readonly #expectations = new Expectations();
  readonly #events: EventRecorder;
  readonly #stop = new AbortController();
  readonly #queues = new Map<Controller['name'], WorkQueue<string>>();
  /** Cluster uid → its REST token, read once from the cluster's secret. */
  readonly #tokens = new Map<string, string>();
  #probes: ProbeServers | undefined;
  #running: Promise<void> | undefined;
  #leading = false;
  #term: Promise<void> = Promise.resolve();
  /** This term's reconcilers, told when a cluster is gone so that they forget it. */
  #reconcilers: { forgetCluster(uid: string): void }[] = [];

  constructor(options: OperatorOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#client = new KubeClient(options.kubeConfig);
    const owned = `${LABEL_CREATED_BY}=${OPERATOR_NAME}`;
    // A 5 s cap (client-go's is 30 s) keeps the operator at most a few seconds behind an API server
    // that restarted, at the cost of a few cheap lists while it is down.
    const common = { namespaces: options.namespaces, logger: options.log, backoffMaxMs: 5_000 };
    this.#rayServices = new Informer(this.#client, { ...common, resource: RayServices });
    this.#clusters = new Informer(this.#client, { ...common, resource: RayClusters });
    this.#pods = new Informer(this.#client, {
      ...common,
      resource: Pods,
      labelSelector: `${owned},${LABEL_CLUSTER}`,
    });
    this.#services = new Informer(this.#client, { ...common, resource: Services, labelSelector: owned });
    this.#events = new EventRecorder({ client: this.#client, logger: options.log });
    this.#wireEvents();
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Starts caches, probes and the election; resolves once the probe servers listen. */
  async start(): Promise<{ metricsUrl: string; healthUrl: string }> {
    const informers = [this.#rayServices, this.#clusters, this.#pods, this.#services];
    for (const informer of informers) informer.start();
    this.#probes = await startProbeServers({
      registry: this.registry,
      host: this.#options.host ?? '0.0.0.0',
      metricsPort: this.#options.metricsPort,
      healthPort: this.#options.healthPort,
      ready: () => informers.every((i) => i.hasSynced()),
      healthy: () => !this.#stop.signal.aborted,
    });
    this.#running = this.#run(informers);
    return { metricsUrl: this.#probes.metricsUrl, healthUrl: this.#probes.healthUrl };
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
    await Promise.all([this.#rayServices, this.#clusters, this.#pods, this.#services].map((i) => i.stop()));
    await this.#events.flush();
    await this.#probes?.close();
    await this.#client.close();
  }

  async #run(informers: Informer<KubeObject>[]): Promise<void> {
    const signal = this.#stop.signal;
    try {
      await Promise.all(informers.map((i) => i.waitForSync(signal)));
    } catch {
      return; // stopped before the caches synced
    }
    const election = this.#options.leaderElection;
    if (!election) {
      await this.#lead(signal);
      return;
    }
    const elector = new LeaderElector({
      client: this.#client,
      namespace: election.namespace,
      name: election.name,
      identity: election.identity ?? `${hostname()}-${process.pid}`,
      leaseDurationMs: election.leaseDurationMs,
      renewDeadlineMs: election.renewDeadlineMs,
      retryPeriodMs: election.retryPeriodMs,
      logger: this.#log,
      // A lost term returns before its reconciles have wound down; the next one waits for them, so
      // one key is never reconciled by two terms at once.
      onStartedLeading: (leaderSignal) => {
        this.#term = this.#term.then(() => this.#lead(leaderSignal));
        return this.#term;
      },
    });
    // Each run is one term: after losing the lease, campaign again (with warm caches).
    while (!signal.aborted) await elector.run(signal);
  }

  /** One term of leadership: fresh queues seeded with every object, workers until the signal aborts. */
  async #lead(signal: AbortSignal): Promise<void> {
    this.#leading = true;
    this.#metrics.leader.set(1);
    this.#log.info('leading: reconciling');
    try {
      await Promise.all(this.#controllers().map((controller) => this.#runController(controller, signal)));
    } finally {
      this.#leading = false;
      this.#metrics.leader.set(0);
      this.#log.info('stopped leading');
    }
  }

  #controllers(): Controller[] {
    const common = {
      client: this.#client,
      events: this.#events,
      busyRequeueMs: this.#options.busyRequeueMs,
      idleRequeueMs: this.#options.idleRequeueMs,
    };
    const clusters = new RayClusterReconciler({
      ...common,
      clusters: this.#clusters,
      pods: this.#pods,
      services: this.#services,
      expectations: this.#expectations,
      log: this.#log.child({ controller: 'raycluster' }),
      build: this.#options.build ?? defaultBuildOptions,
      operatorNamespace: this.#options.dashboardPolicyNamespace,
    });
    const services = new RayServiceReconciler({
      ...common,
      rayServices: this.#rayServices,
      clusters: this.#clusters,
      pods: this.#pods,
      services: this.#services,
      log: this.#log.child({ controller: 'rayservice' }),
      headClient: (cluster) => this.#headClient(cluster),
    });
    this.#reconcilers = [clusters, services];
    return [
      {
        name: 'raycluster',
        reconcile: (key) => clusters.reconcile(key),
        keys: () => this.#clusters.list().map(objectKey),
      },
      {
        name: 'rayservice',
        reconcile: (key) => services.reconcile(key),
        keys: () => this.#rayServices.list().map(objectKey),
      },
    ];
  }

  async #runController(controller: Controller, signal: AbortSignal): Promise<void> {
    const { name } = controller;
    const queue = new WorkQueue<string>();
    this.#queues.set(name, queue);
    for (const key of controller.keys()) queue.add(key);
    const depth = setInterval(() => this.#metrics.queueDepth.set({ name }, queue.len()), 1000);
    try {
      await runWorkers(
        queue,
        this.#options.concurrency ?? 4,
        async (key) => {
          const end = this.#metrics.duration.startTimer({ controller: name });
          try {
            const result = await controller.reconcile(key);
            this.#metrics.reconciles.inc({ controller: name, result: result ? 'requeue_after' : 'success' });
            return result;
          } catch (err) {
            this.#metrics.reconciles.inc({ controller: name, result: 'error' });
            this.#metrics.errors.inc({ controller: name });
            throw err;
          } finally {
            end();
          }
        },
        {
          signal,
          onError: (key, err) =>
            this.#log.warn({ controller: name, key, err }, 'reconcile failed; retrying with backoff'),
        },
      );
    } finally {
      clearInterval(depth);
      if (this.#queues.get(name) === queue) this.#queues.delete(name);
    }
  }

  async #headClient(cluster: RayCluster): Promise<ServeRestClient> {
    const { name = '', namespace = '', uid = '' } = cluster.metadata;
    let token = this.#tokens.get(uid);
    if (token === undefined) {
      const secret = await this.#client.get<KubeObject & { data?: Record<string, string> }>(
        Secrets,
        namespace,
        tokenSecretName(name),
      );
      token = secret?.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : '';
      if (token) this.#tokens.set(uid, token);
    }
    const domain = (this.#options.build ?? defaultBuildOptions).clusterDomain;
    const address =
      this.#options.headAddress?.(cluster) ??
      `http://${headServiceName(name)}.${namespace}.svc.${domain}:${ports.dashboard}`;
    return new ServeRestClient(address, token || undefined);
  }

  #enqueue(controller: Controller['name'], key: string | undefined): void {
    if (key) this.#queues.get(controller)?.add(key);
  }

  #wireEvents(): void {
    const clusterKey = (obj: KubeObject) => {
      const cluster = obj.metadata?.labels?.[LABEL_CLUSTER];
      return cluster ? `${obj.metadata?.namespace}/${cluster}` : undefined;
    };
    const originKey = (obj: KubeObject | undefined) => {
      const service = obj?.metadata?.labels?.[LABEL_ORIGIN];
      return service ? `${obj?.metadata?.namespace}/${service}` : undefined;
    };
    // A pod or service event concerns its cluster, and the RayService that cluster serves.
    const touched = (obj: KubeObject) => {
      const key = clusterKey(obj);
      this.#enqueue('raycluster', key);
      this.#enqueue('rayservice', originKey(obj) ?? originKey(key ? this.#clusters.get(key) : undefined));
    };
    this.#rayServices.addHandlers({
      onAdd: (rs) => this.#enqueue('rayservice', objectKey(rs)),
      onUpdate: (_old, rs) => this.#enqueue('rayservice', objectKey(rs)),
      onDelete: (rs) => this.#enqueue('rayservice', objectKey(rs)),
    });
    this.#clusters.addHandlers({
      onAdd: (c) => {
        this.#enqueue('raycluster', objectKey(c));
        this.#enqueue('rayservice', originKey(c));
      },
      onUpdate: (_old, c) => {
        this.#enqueue('raycluster', objectKey(c));
        this.#enqueue('rayservice', originKey(c));
      },
      onDelete: (c) => {
        this.#expectations.delete(objectKey(c));
        this.#tokens.delete(c.metadata?.uid ?? '');
        for (const reconciler of this.#reconcilers) reconciler.forgetCluster(c.metadata?.uid ?? '');
        this.#enqueue('raycluster', objectKey(c));
        this.#enqueue('rayservice', originKey(c));
      },
    });
    this.#pods.addHandlers({
      onAdd: (pod) => {
        const key = clusterKey(pod);
        if (key) this.#expectations.creationObserved(key, pod.metadata?.name ?? '');
        touched(pod);
      },
      onUpdate: (_old, pod) => {
        const key = clusterKey(pod);
        if (key && pod.metadata?.deletionTimestamp) {
          this.#expectations.deletionObserved(key, pod.metadata.name ?? '', pod.metadata.uid);
        }
        touched(pod);
      },
      onDelete: (pod) => {
        const key = clusterKey(pod);
        if (key) this.#expectations.deletionObserved(key, pod.metadata?.name ?? '', pod.metadata?.uid);
        touched(pod);
      },
    });
    this.#services.addHandlers({ onAdd: touched, onUpdate: (_o, s) => touched(s), onDelete: touched });
  }
}
