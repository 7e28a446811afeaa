/**
 * What a node has when `rayline start` is not told (`--num-cpus`, `--memory`, `--num-gpus`).
 *
 * Cgroup limits are read first: inside a container `os.availableParallelism()` and `os.totalmem()`
 * report the host's CPUs and memory, and a node that advertised them would take replicas the
 * container cannot run (CPU throttling, OOM kills). GPUs are the NVIDIA devices this process can
 * see. Everything is a plain file read under `root`, so tests can fake the filesystem; nvidia-smi
 * is never run (it can hang on a wedged driver).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ResourceSet } from '../placement/types.ts';

export interface DetectedResources {
  /** CPUs; fractional when a cgroup quota says so (e.g. 1.5). */
  CPU: number;
  /** Bytes. */
  memory: number;
  /** `gpuIds.length`. */
  GPU: number;
  /** Device ids as CUDA_VISIBLE_DEVICES would name them: indexes, or UUIDs when it lists UUIDs. */
  gpuIds: string[];
  source: {
    cpu: 'cgroup' | 'machine';
    memory: 'cgroup' | 'machine';
    gpu: 'CUDA_VISIBLE_DEVICES' | 'devices' | 'none';
  };
}

export interface DetectOptions {
  /** Prefix of every path read; default '/'. */
  root?: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The machine's values; default `os.availableParallelism()` / `os.totalmem()`. For tests. */
  machine?: { CPU: number; memory: number };
}

/**
 * v1 writes "no limit" as the largest page-aligned int64 (9223372036854771712); anything this
 * large is no limit (2^60 bytes is an exabyte).
 */
const V1_UNLIMITED = 2 ** 60;

export function detectResources(options: DetectOptions = {}): DetectedResources {
  const root = options.root ?? '/';
  const env = options.env ?? process.env;
  const machine = options.machine ?? { CPU: availableParallelism(), memory: totalmem() };
  const cgroups = findCgroups(root);

  // A limit above the machine's binds nothing (a quota of 8 CPUs on a 4-CPU host): the smaller wins.
  const cgroupCpu = cpuLimit(cgroups);
  const cgroupMemory = memoryLimit(cgroups);
  const cpuFromCgroup = cgroupCpu !== undefined && cgroupCpu < machine.CPU;
  const memoryFromCgroup = cgroupMemory !== undefined && cgroupMemory < machine.memory;

  const gpus = detectGpus(root, env);
  return {
    CPU: cpuFromCgroup ? cgroupCpu : machine.CPU,
    memory: memoryFromCgroup ? cgroupMemory : machine.memory,
    GPU: gpus.ids.length,
    gpuIds: gpus.ids,
    source: {
      cpu: cpuFromCgroup ? 'cgroup' : 'machine',
      memory: memoryFromCgroup ? 'cgroup' : 'machine',
      gpu: gpus.source,
    },
  };
}

/**
 * The node's resources: declared values (`--num-cpus`, `--num-gpus`, `--memory`, `--resources`)
 * win over detected ones, custom resources pass through. `gpuIds` is cut to the declared GPU
 * count; when more GPUs are declared than are visible, the ids are '0'..n-1 rather than the
 * visible ones padded: such a node (a test, or devices the detection cannot see) is taken at its
 * word, as `NodeView` reads `GPU: n` with no device list.
 */
export function nodeResources(
  declared: ResourceSet,
  detected: Pick<DetectedResources, 'CPU' | 'memory' | 'GPU' | 'gpuIds'>,
): { total: ResourceSet; gpuIds: string[] } {
  const total: ResourceSet = {
    ...declared,
    CPU: declared.CPU ?? detected.CPU,
    memory: declared.memory ?? detected.memory,
    GPU: declared.GPU ?? detected.GPU,
  };
  // A device is handed out whole or shared, never split across ids: a fractional count has floor(n) ids.
  const count = Math.floor(total.GPU);
  const gpuIds =
    count <= detected.gpuIds.length
      ? detected.gpuIds.slice(0, count)
      : Array.from({ length: count }, (_, i) => String(i));
  return { total, gpuIds };
}

interface Cgroups {
  /** v2 directories from the process's own cgroup up to the mount: a parent's limit binds too. */
  v2: string[];
  /** v1 directories of the cpu controller, then of the memory controller, most specific first. */
  v1cpu: string[];
  v1memory: string[];
}

function findCgroups(root: string): Cgroups {
  const mount = join(root, 'sys/fs/cgroup');
  const found: Cgroups = { v2: [], v1cpu: [], v1memory: [] };
  const lines = (readText(join(root, 'proc/self/cgroup')) ?? '').split('\n');
  for (const line of lines) {
    // "hierarchy-id:controllers:path"; the path itself may contain ':'.
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, controllers, path] = match;
    if (id === '0' && controllers === '') {
      found.v2 = ancestors(mount, path);
    } else {
      const names = controllers.split(',');
      // Mounted as e.g. /sys/fs/cgroup/cpu,cpuacct, usually with /sys/fs/cgroup/cpu linked to it.
      const bases = [join(mount, controllers), ...names.map((name) => join(mount, name))];
      if (names.includes('cpu')) found.v1cpu = bases.flatMap((base) => ancestors(base, path));
      if (names.includes('memory')) found.v1memory = bases.flatMap((base) => ancestors(base, path));
    }
  }
  // No /proc/self/cgroup (or no v2 line) yet a v2 mount: read its root.
  if (found.v2.length === 0 && found.v1cpu.length === 0 && found.v1memory.length === 0) {
    if (isFile(join(mount, 'cgroup.controllers'))) found.v2 = [mount];
    else {
      found.v1cpu = [join(mount, 'cpu,cpuacct'), join(mount, 'cpu')];
      found.v1memory = [join(mount, 'memory')];
    }
  }
  return found;
}

/**
 * `base/path` and its parents up to `base`. With a cgroup namespace (the usual container) the path
 * is '/' and this is just `base`; without one the path names the host's hierarchy, which the
 * container may not have mounted: then only `base` exists and is what is read.
 */
function ancestors(base: string, path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.' && part !== '..');
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push(join(base, ...parts.slice(0, n)));
  return dirs;
}

function cpuLimit(cgroups: Cgroups): number | undefined {
  const limits: number[] = [];
  for (const dir of cgroups.v2) {
    // "max 100000" or "200000 100000": quota and period in microseconds.
    const [quota, period] = (readText(join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
    const cpus = quotaOverPeriod(quota, period);
    if (cpus !== undefined) limits.push(cpus);
  }
  for (const dir of cgroups.v1cpu) {
    const quota = readText(join(dir, 'cpu.cfs_quota_us'))?.trim();
    const period = readText(join(dir, 'cpu.cfs_period_us'))?.trim();
    const cpus = quotaOverPeriod(quota, period);
    if (cpus !== undefined) limits.push(cpus);
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** Quota / period, or undefined for no limit ('max', -1) or anything unreadable. */
function quotaOverPeriod(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!quota || !period || !Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}

function memoryLimit(cgroups: Cgroups): number | undefined {
  const limits: number[] = [];
  for (const dir of cgroups.v2) {
    const value = bytes(readText(join(dir, 'memory.max')));
    if (value !== undefined) limits.push(value);
  }
  for (const dir of cgroups.v1memory) {
    const value = bytes(readText(join(dir, 'memory.limit_in_bytes')));
    if (value !== undefined && value < V1_UNLIMITED) limits.push(value);
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** A byte count, or undefined for 'max' or anything unreadable. */
function bytes(text: string | undefined): number | undefined {
  const trimmed = text?.trim();
  if (!trimmed || !/^\d+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return value > 0 ? value : undefined;
}

function detectGpus(
  root: string,
  env: NodeJS.ProcessEnv,
): { ids: string[]; source: DetectedResources['source']['gpu'] } {
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) {
    const ids: string[] = [];
    for (const entry of visible.split(',').map((s) => s.trim())) {
      // CUDA stops at the first invalid entry: "0,-1,1" is device 0 only; "", "-1" and
      // "NoDevFiles" (what some schedulers set for "no GPU") are none.
      if (entry === '' || entry === 'NoDevFiles' || entry.startsWith('-')) break;
      ids.push(entry);
    }
    return { ids, source: 'CUDA_VISIBLE_DEVICES' };
  }
  // /dev/nvidia<N> is one device; nvidiactl, nvidia-uvm, nvidia-modeset are the driver's.
  const devices = listDir(join(root, 'dev'))
    .map((name) => /^nvidia(\d+)$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b)
    .map(String);
  if (devices.length > 0) return { ids: devices, source: 'devices' };
  // The driver lists each GPU by PCI address; without device files, number them in order.
  const count = listDir(join(root, 'proc/driver/nvidia/gpus')).length;
  if (count > 0) return { ids: Array.from({ length: count }, (_, i) => String(i)), source: 'devices' };
  return { ids: [], source: 'none' };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
