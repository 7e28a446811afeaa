/**
 * A load client pod for the end-to-end suite: Rayline's own image running test/e2e/load-client.ts
 * against a URL inside the cluster (a serve service, as users' clients reach it), at a steady rate.
 * Its counts are read with kubectl exec, so it keeps counting whatever happens to the pods it calls.
 */
import { readFile } from 'node:fs/promises';
import { image, kubectl, repoRoot, waitFor } from './support.ts';

export interface LoadStats {
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
  done: boolean;
  failures: string[];
  p50Ms: number;
  p99Ms: number;
}

export class LoadClient {
  readonly name: string;
  readonly namespace: string;

  constructor(name: string, namespace = 'default') {
    this.name = name;
    this.namespace = namespace;
  }

  static async start(name: string, url: string, ratePerS: number, body: unknown, namespace = 'default') {
    const client = new LoadClient(name, namespace);
    const script = await readFile(`${repoRoot}test/e2e/load-client.ts`, 'utf8');
    await kubectl(['delete', 'pod,configmap', name, '-n', namespace, '--ignore-not-found', '--wait=true']);
    await kubectl(['create', 'configmap', name, '-n', namespace, `--from-literal=load-client.ts=${script}`]);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'rayline-e2e-load' } },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        containers: [
          {
            name: 'load',
            image,
            command: ['node', '/load/load-client.ts', url, String(ratePerS), JSON.stringify(body)],
            resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
            volumeMounts: [{ name: 'script', mountPath: '/load' }],
          },
        ],
        volumes: [{ name: 'script', configMap: { name } }],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    await waitFor(`load client ${name} counting`, async () => (await client.stats()).sent > 0, 120_000);
    return client;
  }

  async stats(): Promise<LoadStats> {
    return JSON.parse(
      await kubectl(['exec', '-n', this.namespace, this.name, '--', 'cat', '/tmp/load-stats.json']),
    );
  }

  /** Waits until at least `count` more requests have answered 200 than when it was called. */
  async waitForOk(count: number, timeoutMs = 120_000): Promise<LoadStats> {
    const from = (await this.stats()).ok;
    return waitFor(
      `${count} more successful requests`,
      async () => {
        const s = await this.stats();
        return s.ok >= from + count ? s : undefined;
      },
      timeoutMs,
    );
  }

  /**
   * Runs `disturb` under steady load (after 50 answers, so the load is flowing), then waits for 100
   * more answers and stops. Prints the counts with `label` and the time `disturb` took; returns the
   * final counts, for the caller to assert on.
   */
  static async during(
    label: string,
    url: string,
    body: unknown,
    disturb: () => Promise<void>,
  ): Promise<LoadStats> {
    const load = await LoadClient.start(`load-${label.replace(/\W+/g, '-')}`, url, 50, body);
    await load.waitForOk(50);
    const started = Date.now();
    await disturb();
    const tookS = (Date.now() - started) / 1000;
    await load.waitForOk(100);
    const stats = await load.stop();
    console.log(
      `${label}: ${tookS.toFixed(1)} s, load ${JSON.stringify({ ...stats, failures: stats.failures.length })}`,
    );
    return stats;
  }

  /** Stops sending, waits for every request in flight to end, and returns the final counts. */
  async stop(): Promise<LoadStats> {
    await kubectl(['exec', '-n', this.namespace, this.name, '--', 'touch', '/tmp/load-stop']);
    const stats = await waitFor(
      'load client to finish',
      async () => {
        const s = await this.stats();
        return s.done ? s : undefined;
      },
      60_000,
    );
    await kubectl([
      'delete',
      'pod,configmap',
      this.name,
      '-n',
      this.namespace,
      '--ignore-not-found',
      '--wait=false',
    ]);
    return stats;
  }
}
