/**
 * The cluster autoscaler's contract: what the head tells the planner (node load, pending demand),
 * what a provider tells it (worker groups, its workers) and the decision a provider carries out.
 * The planner is pure; everything that touches a platform sits behind NodeProvider.
 */

/** Amounts by resource name: `CPU`, `GPU`, `memory` (bytes) and custom resources. */
export type ResourceSet = Record<string, number>;

/** One worker group as the autoscaler sizes it. */
export interface WorkerGroupShape {
  name: string;
  /** What one worker registers with (for Kubernetes: one host of the group). */
  resourcesPerWorker: ResourceSet;
  /** Already multiplied by numOfHosts: these count workers, not replicas of the group. */
  minWorkers: number;
  maxWorkers: number;
  /** Overrides ClusterShape.idleTimeoutS for this group's workers. */
  idleTimeoutS?: number;
}

export type UpscalingMode = 'Default' | 'Aggressive' | 'Conservative';

export interface ClusterShape {
  groups: WorkerGroupShape[];
  /** Seconds a worker must have had nothing placed on it before it is removed; default 60. */
  idleTimeoutS: number;
  /** Conservative adds at most max(1, running workers) workers per plan; the others all needed. */
  upscalingMode: UpscalingMode;
}

export interface ProviderWorker {
  /** The provider's name for the worker (the pod name for Kubernetes); a node registers with it. */
  id: string;
  group: string;
  state: 'pending' | 'running' | 'terminating';
}

export interface GroupDecision {
  name: string;
  /** Workers the group should have once `remove` is carried out (removals already subtracted). */
  targetWorkers: number;
  /** Ids of idle workers the planner chose to remove; never any other worker. */
  remove: string[];
}

export interface ScaleDecision {
  groups: GroupDecision[];
}

/**
 * A platform that starts and stops workers. The provider owns the mapping to its platform (pods,
 * processes, replica counts per host); the planner only speaks in workers of named groups.
 *
 * - `shape()` is read before every plan, so edits to the cluster's groups take effect on the next one.
 * - `apply()` makes each group converge on `targetWorkers`, removing exactly the workers in `remove`
 *   (and no others) where the count goes down; a decision equal to the current state changes nothing.
 * - `reconcile()`, when present, is called once per autoscaler tick for the provider's housekeeping
 *   (for Kubernetes: clearing `workersToDelete` once those pods are gone).
 */
export interface NodeProvider {
  shape(): Promise<ClusterShape>;
  workers(): Promise<ProviderWorker[]>;
  apply(decision: ScaleDecision): Promise<void>;
  reconcile?(): Promise<void>;
}

export type PlacementStrategy = 'PACK' | 'SPREAD' | 'STRICT_PACK' | 'STRICT_SPREAD';

/**
 * Something waiting for resources: a replica without placement-group bundles is one bundle with
 * strategy PACK; a placement group is its bundles and strategy, placed all or nothing.
 */
export interface ResourceDemand {
  bundles: ResourceSet[];
  strategy: PlacementStrategy;
}

/** A registered node as the head sees it. */
export interface NodeLoad {
  /** For workers, the provider's worker id, so that the planner can name it in `remove`. */
  id: string;
  /** The worker group; undefined for the head, which is never removed. */
  group: string | undefined;
  total: ResourceSet;
  available: ResourceSet;
  /** Seconds since anything was placed on the node; 0 while something runs there. */
  idleForS: number;
}
