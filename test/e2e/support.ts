/**
 * What the end-to-end suite does to a cluster, the way a user would: kubectl and helm on PATH against
 * KUBECONFIG (test/e2e/run.sh sets both), polling waits with a named condition, and the operator
 * installed from the chart. Nothing here knows which cluster it talks to.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const image = process.env.RAYLINE_IMAGE ?? 'rayline/rayline:0.1.0';
export const operatorNamespace = 'rayline-system';
export const operatorRelease = 'rayline-operator';
/** Pod logs of each scenario, kept after its resources are deleted (test/e2e/run.sh prints where). */
export const artifactsDir =
  process.env.E2E_ARTIFACTS ??
  path.join(os.tmpdir(), `rayline-e2e-${new Date().toISOString().replace(/[:.]/g, '-')}`);

export class CommandError extends Error {
  readonly command: string;
  readonly code: number | null;
  readonly stderr: string;

  constructor(command: string, code: number | null, stderr: string) {
    super(`${command} exited ${code}: ${stderr.trim().slice(-2000)}`);
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
}

/** Runs a command to its end; its stdout, or a CommandError naming it with its stderr. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = [command, ...args].join(' ').slice(0, 300);
      if (code === 0) resolve(stdout);
      else reject(new CommandError(line, code, stderr || stdout));
    });
    // A command that exits without reading its input must fail with its own error, not EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

export const kubectl = (args: string[], options?: RunOptions) => run('kubectl', args, options);

export async function kubectlJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that; on timeout
 * throws naming `what` and the last value or error the probe gave.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 180_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${String(last)}`);
    }
    await sleep(intervalMs);
  }
}

export interface KubeObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; uid?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export function condition(object: KubeObject, type: string): Condition | undefined {
  const conditions = (object.status?.conditions ?? []) as Condition[];
  return conditions.find((c) => c.type === type);
}

export interface PodInfo {
  name: string;
  phase: string;
  ready: boolean;
  labels: Record<string, string>;
  deleting: boolean;
}

export async function pods(namespace: string, selector: string): Promise<PodInfo[]> {
  const list = await kubectlJson<{ items: (KubeObject & { metadata: { deletionTimestamp?: string } })[] }>([
    'get',
    'pods',
    '-n',
    namespace,
    '-l',
    selector,
  ]);
  return list.items.map((pod) => {
    const conditions = (pod.status?.conditions ?? []) as Condition[];
    return {
      name: pod.metadata.name,
      phase: String(pod.status?.phase),
      ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
      labels: pod.metadata.labels ?? {},
      deleting: pod.metadata.deletionTimestamp !== undefined,
    };
  });
}

/** Installs (or upgrades to) the chart with the suite's image and waits for the operator to be Ready. */
export async function installOperator(extra: string[] = []): Promise<void> {
  const [repository, tag] = splitImage(image);
  await run(
    'helm',
    [
      'upgrade',
      '--install',
      operatorRelease,
      `${repoRoot}charts/rayline-operator`,
      '--namespace',
      operatorNamespace,
      '--create-namespace',
      '--set',
      `image.repository=${repository}`,
      '--set',
      `image.tag=${tag}`,
      '--set',
      'image.pullPolicy=IfNotPresent',
      '--wait',
      '--timeout',
      '180s',
      ...extra,
    ],
    { timeoutMs: 240_000 },
  );
}

function splitImage(ref: string): [string, string] {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}

/** Applies a manifest file of the repository, or YAML text. */
export async function apply(
  manifest: { file: string } | { yaml: string },
  namespace = 'default',
): Promise<void> {
  if ('file' in manifest) await kubectl(['apply', '-n', namespace, '-f', `${repoRoot}${manifest.file}`]);
  else await kubectl(['apply', '-n', namespace, '-f', '-'], { input: manifest.yaml });
}

/** Deletes and waits until every pod of the selector is gone. */
export async function deleteAndWait(kind: string, name: string, namespace: string, podSelector?: string) {
  await kubectl(
    ['delete', kind, name, '-n', namespace, '--ignore-not-found', '--wait=true', '--timeout=180s'],
    {
      timeoutMs: 200_000,
    },
  );
  if (podSelector) {
    await waitFor(`pods ${podSelector} gone`, async () => (await pods(namespace, podSelector)).length === 0);
  }
}

/**
 * Saves every container log of the pods of a selector (current and previous runs) and their
 * descriptions under the artifacts folder, so that a failed scenario can be read after its
 * resources are gone. Never fails the test.
 */
export async function saveLogs(label: string, namespace: string, selector: string): Promise<void> {
  const dir = path.join(artifactsDir, label.replace(/[^\w.-]+/g, '-'));
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'describe.txt'),
      await kubectl(['describe', 'pods', '-n', namespace, '-l', selector]),
    );
    for (const pod of await pods(namespace, selector)) {
      const logs = await kubectl([
        'logs',
        '-n',
        namespace,
        pod.name,
        '--all-containers',
        '--timestamps',
      ]).catch(String);
      await writeFile(path.join(dir, `${pod.name}.log`), logs);
    }
  } catch (error) {
    console.error(`could not save the logs of ${selector}: ${String(error)}`);
  }
}
