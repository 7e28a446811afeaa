/**
 * The environment a replica process gets for its GPUs. Always set, even when empty: a process
 * without CUDA_VISIBLE_DEVICES sees every GPU of the machine, and a CPU replica that quietly
 * initialises CUDA on device 0 takes memory a GPU replica was promised.
 */

export interface GpuEnvironment {
  /** Read by CUDA itself: the only devices the process can open, renumbered from 0 inside it. */
  CUDA_VISIBLE_DEVICES: string;
  /** The same ids for Rayline's own code, which should not depend on a CUDA-specific variable. */
  RAYLINE_GPU_IDS: string;
}

export function gpuEnvironment(gpuIds: readonly string[]): GpuEnvironment {
  const ids = gpuIds.join(',');
  return { CUDA_VISIBLE_DEVICES: ids, RAYLINE_GPU_IDS: ids };
}
