/**
 * A client pod inside the cluster (Rayline's image, idle) that the suite runs one-off HTTP calls
 * from with kubectl exec: what a user's in-cluster client sees, DNS names and service IPs included.
 */
import { image, kubectl, pods, waitFor } from './support.ts';

export interface HttpAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

// Runs in the pod: fetch, then print status, headers and body as one JSON line.
const fetchScript = `
const [url, method, body] = process.argv.slice(1);
const init = { method, signal: AbortSignal.timeout(30000) };
if (body) { init.body = body; init.headers = { 'content-type': 'application/json' }; }
fetch(url, init).then(async (r) => {
  console.log(JSON.stringify({ status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() }));
}, (e) => { console.log(JSON.stringify({ status: 0, headers: {}, body: String(e.cause ?? e) })); });
`;

export class ClusterClient {
  readonly name: string;
  readonly namespace: string;

  constructor(name: string, namespace: string) {
    this.name = name;
    this.namespace = namespace;
  }

  static async start(name = 'e2e-client', namespace = 'default'): Promise<ClusterClient> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'rayline-e2e-client' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        containers: [
          {
            name: 'client',
            image,
            command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } },
          },
        ],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    await waitFor(`client pod ${name} Ready`, async () =>
      (await pods(namespace, `app.kubernetes.io/name=rayline-e2e-client`)).some(
        (p) => p.name === name && p.ready,
      ),
    );
    return new ClusterClient(name, namespace);
  }

  async request(url: string, body?: unknown): Promise<HttpAnswer> {
    const args = ['exec', '-n', this.namespace, this.name, '--', 'node', '-e', fetchScript, url];
    args.push(body === undefined ? 'GET' : 'POST', body === undefined ? '' : JSON.stringify(body));
    return JSON.parse(await kubectl(args, { timeoutMs: 60_000 })) as HttpAnswer;
  }

  async delete(): Promise<void> {
    await kubectl(['delete', 'pod', this.name, '-n', this.namespace, '--ignore-not-found', '--wait=false']);
  }
}
