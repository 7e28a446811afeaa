/**
 * The vocabulary of placement: what a node offers, what a replica asks for, where it went, and why
 * it could not go anywhere. Plain data, so the controller can keep it, log it and send it to nodes.
 *
 * `ResourceSet` and `PlacementStrategy` are structurally the same as the cluster autoscaler's
 * (`runtime/autoscaler/types.ts`), so a `Pending.demand` can be handed to its planner as is.
 */

/** Amounts by resource name: `CPU`, `GPU`, `memory` (bytes) and custom names. Fractions allowed. */
export type ResourceSet = Record<string, number>;

export type PlacementStrategy = 'PACK' | 'SPREAD' | 'STRICT_PACK' | 'STRICT_SPREAD';

/** A node as the head sees it. */
export interface NodeView {
  id: string;
  /** Capacity when nothing runs. `GPU` is the device count; see `gpuIds`. */
  total: ResourceSet;
  labels: Record<string, string>;
  /**
   * Physical device ids, e.g. `['0', '1']`. Empty with `total.GPU: n` means devices `'0'..'n-1'`
   * (a node declared with `--num-gpus` and no device list). When both are given and disagree, the
   * smaller wins: a node cannot hand out devices it does not list, nor more than it declared.
   */
  gpuIds: string[];
  /** False once the node missed its heartbeats: nothing new goes there. */
  alive: boolean;
  /** Being emptied (scale-down, upgrade): what runs stays, nothing new goes there. */
  draining?: boolean;
}

/** One replica to place. */
export interface ReplicaRequest {
  replicaId: string;
  /** `app/deployment`: replicas of one deployment spread across nodes and count toward the per-node max. */
  deployment: string;
  /**
   * From `ray_actor_options` (see `resourcesFromActorOptions`). With `bundles`, the replica's
   * process runs inside the first bundle: these resources are checked to fit in it, and only the
   * bundles are taken from the nodes (Ray's placement-group semantics: the bundles are the
   * reservation, the actor uses part of the first one).
   */
  resources: ResourceSet;
  /** `placement_group_bundles`: reserved all or nothing. */
  bundles?: ResourceSet[];
  /** `placement_group_strategy`; default PACK. Only meaningful with `bundles`. */
  strategy?: PlacementStrategy;
  /** `max_replicas_per_node`: counted on the node of the replica's process (the first bundle's). */
  maxReplicasPerNode?: number;
}

/** What the ledger holds for one bundle (or for a replica without bundles): enough to restore it. */
export interface Grant {
  nodeId: string;
  resources: ResourceSet;
  /** Devices on `nodeId`, in the order they were taken. */
  gpuIds: string[];
  /** Device id -> share held, present only when a device is shared (a fractional request). */
  gpuFractions?: Record<string, number>;
}

/** Where a replica goes. */
export interface Placement {
  replicaId: string;
  deployment: string;
  /** The node that runs the replica's process (with bundles: the first bundle's node). */
  nodeId: string;
  /** With bundles: each bundle's node, in bundle order. */
  bundleNodes?: string[];
  /**
   * Exactly the devices the replica's process may use: those of its grants on `nodeId` (all bundles
   * there, so a STRICT_PACK 4-GPU replica lists four). Bundles on other nodes are for the processes
   * the replica starts there; their devices are in `grants`.
   */
  gpuIds: string[];
  /** Device id -> share, present only when one of `gpuIds` is shared with other replicas. */
  gpuFractions?: Record<string, number>;
  /** Everything the ledger reserved for this replica; `ResourceLedger.restore` takes these back. */
  grants: Grant[];
}

/** Resource demand in the cluster autoscaler's shape: one PACK bundle for a plain replica. */
export interface ResourceDemand {
  bundles: ResourceSet[];
  strategy: PlacementStrategy;
}

/** A replica that could not be placed in this pass. */
export interface Pending {
  replicaId: string;
  deployment: string;
  /** Names what it needs and the best free capacity seen, e.g. `needs {GPU: 1}; free: node-a {CPU: 2}`. */
  reason: string;
  /**
   * True when no schedulable node could hold it even empty (too big, too many STRICT_SPREAD
   * bundles for the nodes there are) or the request itself is invalid: waiting for others to
   * finish will not help, only other nodes will.
   */
  neverFits: boolean;
  demand: ResourceDemand;
}

/** A running replica, as the controller knows it: counts toward spreading and `max_replicas_per_node`. */
export interface ExistingReplica {
  replicaId: string;
  deployment: string;
  nodeId: string;
}
