/**
 * Placement of replicas onto nodes by resources: the pure engine the controller calls on each tick
 * once clusters have several nodes. No I/O and no clock; see docs in each module.
 */
export { type GpuEnvironment, gpuEnvironment } from './env.ts';
export { type AllocateResult, type LedgerSnapshot, type NodeCapacity, ResourceLedger } from './ledger.ts';
export { replicaRequest, resourcesFromActorOptions } from './request.ts';
export { formatResources } from './resources.ts';
export { type ScheduleInput, type ScheduleResult, schedule } from './scheduler.ts';
export type * from './types.ts';
