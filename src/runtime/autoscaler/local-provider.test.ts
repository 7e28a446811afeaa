/**
 * The local provider against real child processes (harmless `node -e` loops standing in for
 * workers): which processes it starts, which it stops by pid, and that it touches no others.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, test } from 'node:test';
import {
  type AutoscalingConfigInput,
  parseAutoscalingConfig,
  type WorkerGroupConfig,
} from './autoscaling-config.ts';
import { LocalProvider, type LocalProviderOptions, raylineWorkerCommand } from './local-provider.ts';
import type { GroupDecision, ProviderWorker } from './types.ts';

interface Spawned {
  group: string;
  id: string;
  child: ChildProcess;
  /** Resolves once the child printed `ready` (its signal handlers are installed). */
  ready: Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Prints `ready` once running, so a test never signals a process that has not set up yet.
const idleLoop = "process.stdout.write('ready\\n'); setInterval(() => {}, 1e9);";
const ignoresSigterm =
  "process.on('SIGTERM', () => {}); process.stdout.write('ready\\n'); setInterval(() => {}, 1e9);";

const providers: LocalProvider[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  // Whatever a failed test left behind.
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function config(groups: AutoscalingConfigInput['workerGroupSpecs']) {
  return parseAutoscalingConfig({ workerGroupSpecs: groups }, "'test'");
}

function setup(
  groups: AutoscalingConfigInput['workerGroupSpecs'],
  options: Partial<LocalProviderOptions> & { script?: (group: WorkerGroupConfig) => string } = {},
) {
  const spawned: Spawned[] = [];
  const registered = new Set<string>();
  const provider = new LocalProvider({
    config: config(groups),
    spawnWorker: (group, id) => {
      const child = spawn(process.execPath, ['-e', options.script?.(group) ?? idleLoop], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      const ready = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      spawned.push({ group: group.groupName, id, child, ready, exit });
      return child;
    },
    isRegistered: (id) => registered.has(id),
    restartBackoffMs: () => 0,
    ...options,
  });
  providers.push(provider);
  return { provider, spawned, registered };
}

function alive(pid: number | undefined): boolean {
  assert.ok(pid !== undefined);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const decision = (...groups: GroupDecision[]) => ({ groups });
const sortById = (workers: ProviderWorker[]) => [...workers].sort((a, b) => a.id.localeCompare(b.id));

test('apply starts workers of each group, pending until registered, then running', async () => {
  const { provider, spawned, registered } = setup([
    { groupName: 'cpu', maxReplicas: 4, resources: { CPU: 2 } },
    { groupName: 'gpu', maxReplicas: 2, resources: { GPU: 1 } },
  ]);
  await provider.apply(
    decision({ name: 'cpu', targetWorkers: 2, remove: [] }, { name: 'gpu', targetWorkers: 1, remove: [] }),
  );
  assert.deepEqual(
    spawned.map((s) => s.group),
    ['cpu', 'cpu', 'gpu'],
  );
  for (const s of spawned) assert.match(s.id, new RegExp(`^${s.group}-[0-9a-f]{6}$`));
  assert.equal(new Set(spawned.map((s) => s.id)).size, 3);
  await Promise.all(spawned.map((s) => s.ready));
  for (const s of spawned) assert.ok(alive(s.child.pid), `${s.id} runs`);

  assert.deepEqual(
    sortById(await provider.workers()),
    sortById(spawned.map((s) => ({ id: s.id, group: s.group, state: 'pending' }))),
  );
  registered.add(spawned[0].id);
  const states = new Map((await provider.workers()).map((w) => [w.id, w.state]));
  assert.equal(states.get(spawned[0].id), 'running');
  assert.equal(states.get(spawned[1].id), 'pending');

  // The same decision again changes nothing.
  await provider.apply(
    decision({ name: 'cpu', targetWorkers: 2, remove: [] }, { name: 'gpu', targetWorkers: 1, remove: [] }),
  );
  await provider.reconcile();
  assert.equal(spawned.length, 3);
});

test('remove stops exactly the named workers by pid and starts none in their place', async () => {
  const { provider, spawned } = setup([{ groupName: 'cpu', maxReplicas: 4, resources: { CPU: 2 } }]);
  await provider.apply(decision({ name: 'cpu', targetWorkers: 3, remove: [] }));
  await Promise.all(spawned.map((s) => s.ready));
  const [a, b, c] = spawned;

  await provider.apply(decision({ name: 'cpu', targetWorkers: 1, remove: [a.id, c.id, 'cpu-notours'] }));
  const during = new Map((await provider.workers()).map((w) => [w.id, w.state]));
  // Terminating until the process has exited, unless it already has.
  for (const s of [a, c]) assert.ok([undefined, 'terminating'].includes(during.get(s.id)));
  assert.equal(during.get(b.id), 'pending');

  assert.equal((await a.exit).signal, 'SIGTERM');
  assert.equal((await c.exit).signal, 'SIGTERM');
  assert.ok(!alive(a.child.pid) && !alive(c.child.pid));
  assert.ok(alive(b.child.pid), 'the worker not named keeps running');
  await waitFor(async () => (await provider.workers()).length === 1, 'stopped workers to be forgotten');
  assert.deepEqual(await provider.workers(), [{ id: b.id, group: 'cpu', state: 'pending' }]);
  await provider.reconcile();
  assert.equal(spawned.length, 3, 'nothing replaces removed workers');
});

test('a target below the live workers stops none: only `remove` picks who goes', async () => {
  const { provider, spawned } = setup([{ groupName: 'cpu', maxReplicas: 4 }]);
  await provider.apply(decision({ name: 'cpu', targetWorkers: 2, remove: [] }));
  await provider.apply(decision({ name: 'cpu', targetWorkers: 0, remove: [] }));
  await Promise.all(spawned.map((s) => s.ready));
  assert.deepEqual(
    (await provider.workers()).map((w) => w.state),
    ['pending', 'pending'],
  );
  for (const s of spawned) assert.ok(alive(s.child.pid));
});

test('a worker that ignores SIGTERM is killed after the grace period', async () => {
  const { provider, spawned } = setup([{ groupName: 'cpu', maxReplicas: 2 }], {
    stopGraceMs: 100,
    script: () => ignoresSigterm,
  });
  await provider.apply(decision({ name: 'cpu', targetWorkers: 2, remove: [] }));
  await Promise.all(spawned.map((s) => s.ready));
  await provider.apply(decision({ name: 'cpu', targetWorkers: 1, remove: [spawned[0].id] }));
  assert.equal((await spawned[0].exit).signal, 'SIGKILL');
  assert.ok(alive(spawned[1].child.pid));
});

test('a worker that exits on its own is forgotten and replaced on reconcile', async () => {
  const { provider, spawned, registered } = setup([{ groupName: 'cpu', maxReplicas: 2 }]);
  await provider.apply(decision({ name: 'cpu', targetWorkers: 2, remove: [] }));
  await Promise.all(spawned.map((s) => s.ready));
  registered.add(spawned[0].id);
  await provider.workers();
  spawned[0].child.kill('SIGKILL');
  await spawned[0].exit;
  await waitFor(async () => (await provider.workers()).length === 1, 'the dead worker to be forgotten');
  await provider.reconcile();
  assert.equal(spawned.length, 3);
  assert.deepEqual(
    sortById(await provider.workers()).map((w) => w.id),
    [spawned[1].id, spawned[2].id].sort(),
  );
  assert.ok(alive(spawned[1].child.pid));
});

test('workers that die before registering are restarted only after the backoff', async () => {
  const failures: number[] = [];
  const { provider, spawned } = setup([{ groupName: 'cpu', maxReplicas: 2 }], {
    script: () => 'process.exit(3)',
    restartBackoffMs: (n) => {
      failures.push(n);
      return n === 1 ? 0 : 60_000;
    },
  });
  await provider.apply(decision({ name: 'cpu', targetWorkers: 1, remove: [] }));
  assert.equal((await spawned[0].exit).code, 3);
  await waitFor(async () => (await provider.workers()).length === 0, 'the failed worker to be forgotten');
  await provider.reconcile();
  assert.equal(spawned.length, 2, 'the first failure restarts at once');
  await spawned[1].exit;
  await waitFor(async () => (await provider.workers()).length === 0, 'the second failure to be forgotten');
  await provider.reconcile();
  assert.equal(spawned.length, 2, 'the second waits 60 s');
  assert.deepEqual(failures, [1, 2]);
});

test('the first apply starts the initial replicas; later ones do not bring them back', async () => {
  const { provider, spawned } = setup([
    { groupName: 'cpu', minReplicas: 0, replicas: 2, maxReplicas: 4 },
    { groupName: 'gpu', maxReplicas: 1 },
  ]);
  await provider.apply(
    decision({ name: 'cpu', targetWorkers: 0, remove: [] }, { name: 'gpu', targetWorkers: 0, remove: [] }),
  );
  assert.deepEqual(
    spawned.map((s) => s.group),
    ['cpu', 'cpu'],
  );
  await Promise.all(spawned.map((s) => s.ready));
  await provider.apply(decision({ name: 'cpu', targetWorkers: 1, remove: [spawned[0].id] }));
  await spawned[0].exit;
  await waitFor(async () => (await provider.workers()).length === 1, 'the removed worker to be forgotten');
  await provider.apply(decision({ name: 'cpu', targetWorkers: 1, remove: [] }));
  await provider.reconcile();
  assert.equal(spawned.length, 2);
});

test('close stops every worker it started and applies nothing after', async () => {
  const { provider, spawned } = setup([{ groupName: 'cpu', maxReplicas: 3 }]);
  await provider.apply(decision({ name: 'cpu', targetWorkers: 3, remove: [] }));
  await Promise.all(spawned.map((s) => s.ready));
  const bystander = spawn(process.execPath, ['-e', idleLoop], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(bystander);
  await new Promise((resolve) => bystander.stdout!.once('data', resolve));

  await provider.close();
  for (const s of spawned) assert.ok(!alive(s.child.pid), `${s.id} stopped`);
  assert.ok(alive(bystander.pid), 'a process the provider did not start is left alone');
  assert.deepEqual(await provider.workers(), []);
  await provider.apply(decision({ name: 'cpu', targetWorkers: 3, remove: [] }));
  assert.equal(spawned.length, 3);
});

test('the default worker command', () => {
  const [group] = config([
    {
      groupName: 'gpu',
      maxReplicas: 2,
      resources: { CPU: 8, GPU: 1, memory: '1Gi', TPU: 4 },
      labels: { zone: 'a' },
    },
  ]).workerGroupSpecs;
  const command = raylineWorkerCommand(group, 'gpu-abc123', {
    headAddress: '127.0.0.1:6379',
    token: 's3cret',
  });
  assert.equal(command.command, process.execPath);
  const entry = command.args.findIndex((a) => a.endsWith('bin/rayline.js'));
  assert.ok(entry >= 0, command.args.join(' '));
  assert.deepEqual(command.args.slice(entry + 1), [
    'start',
    '--address',
    '127.0.0.1:6379',
    '--block',
    '--node-id',
    'gpu-abc123',
    '--num-cpus',
    '8',
    '--num-gpus',
    '1',
    '--memory',
    String(2 ** 30),
    '--resources',
    '{"TPU":4}',
    '--labels',
    '{"zone":"a"}',
    '--proxy-port',
    '0',
    '--metrics-port',
    '0',
  ]);
  assert.deepEqual(command.env, { RAYLINE_GROUP: 'gpu', RAYLINE_API_TOKEN: 's3cret' });

  const [bare] = config([{ groupName: 'cpu', maxReplicas: 1 }]).workerGroupSpecs;
  const plain = raylineWorkerCommand(bare, 'cpu-1', { headAddress: 'h:1' });
  assert.deepEqual(plain.env, { RAYLINE_GROUP: 'cpu' });
  const at = (flag: string) => plain.args[plain.args.indexOf(flag) + 1];
  assert.deepEqual(['--num-cpus', '--num-gpus', '--memory', '--resources', '--labels'].map(at), [
    '0',
    '0',
    '0',
    '{}',
    '{}',
  ]);
});
