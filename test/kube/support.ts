/**
 * Helpers for the integration tests of this folder (not used by the operator): a TCP proxy that
 * can partition one client from the API server or freeze its connections, a kubeconfig that goes
 * through it, polling waits, and etcd compaction (to make old resourceVersions expire).
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** Forwards TCP to a target; cut() drops and refuses connections, freeze() silences live ones. */
export class TcpProxy {
  readonly #target: { host: string; port: number };
  readonly #server: net.Server;
  readonly #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  readonly #frozen = new Set<net.Socket>();
  #refusing = false;
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(target: URL) {
    this.#target = { host: target.hostname, port: Number(target.port) };
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  #accept(client: net.Socket): void {
    this.accepted++;
    if (this.#refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.#target);
    const pair = { client, upstream };
    this.#pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  /** A network partition: live connections die, new ones are refused until restore(). */
  cut(): void {
    this.#refusing = true;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  restore(): void {
    this.#refusing = false;
  }

  /** A silent stall: live connections stay open but carry nothing more; new ones work. */
  freeze(): void {
    for (const pair of this.#pairs) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.upstream.pause();
      pair.client.pause();
      this.#pairs.delete(pair);
      this.#frozen.add(pair.client).add(pair.upstream);
    }
  }

  async close(): Promise<void> {
    this.cut();
    for (const socket of this.#frozen) socket.destroy();
    this.#frozen.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The env's kubeconfig with its server replaced by the proxy's address. */
export async function kubeConfigVia(
  kubeconfigPath: string,
  server: string,
  proxyPort: number,
): Promise<KubeConfig> {
  const text = await readFile(kubeconfigPath, 'utf8');
  const kc = new KubeConfig();
  kc.loadFromString(text.split(server).join(`https://127.0.0.1:${proxyPort}`));
  return kc;
}

/** Polls cond until true; the timeout is generous because the test machine is small and busy. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

/** Drops etcd's history before revision (an API server's resourceVersion is an etcd revision). */
export async function compactEtcd(etcdUrl: string, revision: string): Promise<void> {
  const res = await fetch(`${etcdUrl}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
  });
  if (!res.ok) throw new Error(`etcd compaction to ${revision} failed: ${res.status} ${await res.text()}`);
}
