import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { detectResources, nodeResources } from './detect-resources.ts';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A fake filesystem: path (relative to the root) -> content. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'rl-detect-'));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

/** A machine larger than every limit below, so a cgroup limit is what binds. */
const machine = { CPU: 64, memory: 256 * 2 ** 30 };
const noGpu = {};

test('cgroup v2 with a CPU and memory limit: the limit', () => {
  const root = tree({
    'proc/self/cgroup': '0::/\n',
    'sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n',
    'sys/fs/cgroup/cpu.max': '200000 100000\n',
    'sys/fs/cgroup/memory.max': '4294967296\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 2);
  assert.equal(detected.memory, 4294967296);
  assert.deepEqual(detected.source, { cpu: 'cgroup', memory: 'cgroup', gpu: 'none' });
});

test('cgroup v2: a fractional CPU quota stays fractional', () => {
  const root = tree({ 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '150000 100000\n' });
  assert.equal(detectResources({ root, env: noGpu, machine }).CPU, 1.5);
});

test('cgroup v2 unlimited ("max"): the machine', () => {
  const root = tree({
    'proc/self/cgroup': '0::/\n',
    'sys/fs/cgroup/cpu.max': 'max 100000\n',
    'sys/fs/cgroup/memory.max': 'max\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 64);
  assert.equal(detected.memory, 256 * 2 ** 30);
  assert.deepEqual(detected.source, { cpu: 'machine', memory: 'machine', gpu: 'none' });
});

test("cgroup v2 nested path: its own limit and its parents', the smallest", () => {
  const root = tree({
    'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    'sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
    'sys/fs/cgroup/kubepods/pod1/ctr/memory.max': '1073741824\n',
    'sys/fs/cgroup/kubepods/pod1/cpu.max': '50000 100000\n',
    'sys/fs/cgroup/kubepods/pod1/memory.max': '2147483648\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 0.5);
  assert.equal(detected.memory, 1073741824);
});

test('cgroup v2 path not mounted in the container: the mount root is read', () => {
  const root = tree({
    'proc/self/cgroup': '0::/system.slice/docker-abc.scope\n',
    'sys/fs/cgroup/cpu.max': '300000 100000\n',
    'sys/fs/cgroup/memory.max': '536870912\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 3);
  assert.equal(detected.memory, 536870912);
});

test('a cgroup limit above the machine binds nothing', () => {
  const root = tree({
    'proc/self/cgroup': '0::/\n',
    'sys/fs/cgroup/cpu.max': '800000 100000\n',
    'sys/fs/cgroup/memory.max': String(64 * 2 ** 30),
  });
  const detected = detectResources({ root, env: noGpu, machine: { CPU: 4, memory: 16 * 2 ** 30 } });
  assert.equal(detected.CPU, 4);
  assert.equal(detected.memory, 16 * 2 ** 30);
  assert.deepEqual(detected.source, { cpu: 'machine', memory: 'machine', gpu: 'none' });
});

test('cgroup v1 with a CPU and memory limit: the limit', () => {
  const root = tree({
    'proc/self/cgroup': '12:memory:/\n4:cpu,cpuacct:/\n1:name=systemd:/\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '250000\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    'sys/fs/cgroup/memory/memory.limit_in_bytes': '2147483648\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 2.5);
  assert.equal(detected.memory, 2147483648);
  assert.deepEqual(detected.source, { cpu: 'cgroup', memory: 'cgroup', gpu: 'none' });
});

test('cgroup v1 unlimited (-1 quota, the int64 page-aligned maximum): the machine', () => {
  const root = tree({
    'proc/self/cgroup': '12:memory:/\n4:cpu,cpuacct:/\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.CPU, 64);
  assert.equal(detected.memory, 256 * 2 ** 30);
  assert.deepEqual(detected.source, { cpu: 'machine', memory: 'machine', gpu: 'none' });
});

test('cgroup v1 through the plain controller mount (/sys/fs/cgroup/cpu)', () => {
  const root = tree({
    'proc/self/cgroup': '4:cpu,cpuacct:/docker/abc\n',
    'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000\n',
    'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
  });
  assert.equal(detectResources({ root, env: noGpu, machine }).CPU, 1);
});

test('no cgroup files: the machine, from os', () => {
  const root = tree({});
  const detected = detectResources({ root, env: noGpu });
  assert.equal(detected.CPU, availableParallelism());
  assert.equal(detected.memory, totalmem());
  assert.equal(detected.GPU, 0);
  assert.deepEqual(detected.gpuIds, []);
  assert.deepEqual(detected.source, { cpu: 'machine', memory: 'machine', gpu: 'none' });
});

test('CUDA_VISIBLE_DEVICES: its entries, whatever /dev holds', () => {
  const root = tree({ 'dev/nvidia0': '', 'dev/nvidia1': '', 'dev/nvidia2': '' });
  const gpus = (value: string) => {
    const detected = detectResources({ root, env: { CUDA_VISIBLE_DEVICES: value }, machine });
    assert.equal(detected.source.gpu, 'CUDA_VISIBLE_DEVICES');
    assert.equal(detected.GPU, detected.gpuIds.length);
    return detected.gpuIds;
  };
  assert.deepEqual(gpus('2,3'), ['2', '3']);
  assert.deepEqual(gpus(' 1 , 0 '), ['1', '0']);
  assert.deepEqual(gpus('GPU-8e2f1c1a-0000-1111-2222-333344445555'), [
    'GPU-8e2f1c1a-0000-1111-2222-333344445555',
  ]);
  assert.deepEqual(gpus(''), []);
  assert.deepEqual(gpus('-1'), []);
  assert.deepEqual(gpus('NoDevFiles'), []);
  // CUDA ignores everything after an invalid entry.
  assert.deepEqual(gpus('0,-1,1'), ['0']);
});

test('/dev/nvidia<N> files are the GPUs; nvidiactl, nvidia-uvm and the like are not', () => {
  const root = tree({
    'dev/nvidia0': '',
    'dev/nvidia1': '',
    'dev/nvidia10': '',
    'dev/nvidiactl': '',
    'dev/nvidia-uvm': '',
    'dev/nvidia-uvm-tools': '',
    'dev/nvidia-modeset': '',
    'dev/null': '',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.GPU, 3);
  assert.deepEqual(detected.gpuIds, ['0', '1', '10']);
  assert.equal(detected.source.gpu, 'devices');
});

test("/dev as an H200 machine lent to this project shows it (nvidia-caps a directory): one GPU, '0'", () => {
  const root = tree({
    'dev/nvidia0': '',
    'dev/nvidia-caps/nvidia-cap1': '',
    'dev/nvidiactl': '',
    'dev/nvidia-uvm': '',
    'dev/nvidia-uvm-tools': '',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.deepEqual([detected.GPU, detected.gpuIds], [1, ['0']]);
});

test('only the driver control files: no GPU', () => {
  const root = tree({ 'dev/nvidiactl': '', 'dev/nvidia-uvm': '' });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.GPU, 0);
  assert.deepEqual(detected.gpuIds, []);
  assert.equal(detected.source.gpu, 'none');
});

test('no device files but /proc/driver/nvidia/gpus: one GPU per entry, numbered in order', () => {
  const root = tree({
    'proc/driver/nvidia/gpus/0000:3b:00.0/information': 'Model: H100\n',
    'proc/driver/nvidia/gpus/0000:86:00.0/information': 'Model: H100\n',
  });
  const detected = detectResources({ root, env: noGpu, machine });
  assert.equal(detected.GPU, 2);
  assert.deepEqual(detected.gpuIds, ['0', '1']);
  assert.equal(detected.source.gpu, 'devices');
});

test('nodeResources: declared values win, custom resources pass through', () => {
  const detected = { CPU: 2.5, memory: 4294967296, GPU: 2, gpuIds: ['0', '1'] };
  assert.deepEqual(nodeResources({}, detected), {
    total: { CPU: 2.5, memory: 4294967296, GPU: 2 },
    gpuIds: ['0', '1'],
  });
  assert.deepEqual(nodeResources({ CPU: 8, memory: 1024, accelerator_tpu: 4 }, detected), {
    total: { CPU: 8, memory: 1024, GPU: 2, accelerator_tpu: 4 },
    gpuIds: ['0', '1'],
  });
});

test('nodeResources: fewer GPUs declared than visible keeps the first ones', () => {
  const detected = { CPU: 4, memory: 1024, GPU: 3, gpuIds: ['2', '5', '7'] };
  assert.deepEqual(nodeResources({ GPU: 2 }, detected), {
    total: { CPU: 4, memory: 1024, GPU: 2 },
    gpuIds: ['2', '5'],
  });
  assert.deepEqual(nodeResources({ GPU: 3 }, detected).gpuIds, ['2', '5', '7']);
  assert.deepEqual(nodeResources({ GPU: 0 }, detected).gpuIds, []);
});

test('nodeResources: more GPUs declared than visible numbers them 0..n-1', () => {
  assert.deepEqual(nodeResources({ GPU: 2 }, { CPU: 4, memory: 1024, GPU: 0, gpuIds: [] }), {
    total: { CPU: 4, memory: 1024, GPU: 2 },
    gpuIds: ['0', '1'],
  });
  assert.deepEqual(nodeResources({ GPU: 3 }, { CPU: 4, memory: 1024, GPU: 1, gpuIds: ['5'] }).gpuIds, [
    '0',
    '1',
    '2',
  ]);
});
