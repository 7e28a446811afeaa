/**
 * A real control plane for the operator's integration tests: etcd and kube-apiserver started as child
 * processes on loopback, with generated certificates, an admin kubeconfig and the project's CRDs
 * installed. There is no kubelet, scheduler or controller-manager: tests set pod status themselves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  ApiextensionsV1Api,
  KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import yaml from 'js-yaml';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface KubeTestEnv {
  /** A kubeconfig file whose user is an admin (group system:masters) client certificate. */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** https://127.0.0.1:PORT */
  server: string;
  /** http://127.0.0.1:PORT, etcd's client URL. */
  etcdUrl: string;
  /** Folder with kube-apiserver, kubectl, etcd and helm. */
  binDir: string;
  /** Folder of this env's certificates, data and logs (apiserver.log, etcd.log). */
  dir: string;
  kubectl(args: string[], opts?: { input?: string }): Promise<CommandResult>;
  helm(args: string[]): Promise<CommandResult>;
  /** Stops kube-apiserver and starts it again on the same port; etcd and its data stay. */
  restartApiServer(): Promise<void>;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface KubeTestEnvOptions {
  /** Apply every crds/*.yaml of the repository and wait until each is Established. Default true. */
  installCrds?: boolean;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const readyTimeoutMs = 90_000;
// kube-apiserver's graceful shutdown holds open watches for up to 20 s; tests restart it to test
// clients' recovery, not its shutdown, so it gets a short grace before SIGKILL.
const stopTimeoutMs = 3_000;

// Children and folders to clean up if the test process ends without calling stop().
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let cleanupInstalled = false;

function cleanupNow(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupNow();
      process.removeListener(signal, onSignal);
      // Listening replaced the default action; restore it when nobody else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

let assetsPromise: Promise<string> | undefined;

/** Builds (first time only) or finds the Kubernetes binaries; honours KUBEBUILDER_ASSETS. */
export function kubeAssets(): Promise<string> {
  assetsPromise ??= new Promise<string>((resolve, reject) => {
    const script = fileURLToPath(new URL('./assets.sh', import.meta.url));
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-20_000);
      // A first build takes many minutes: say why the test is quiet, but not the go tool's chatter.
      for (const line of chunk.split('\n'))
        if (line.startsWith('kube-assets:')) process.stderr.write(`${line}\n`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const dir = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`test/kube/assets.sh exited with ${code}:\n${lastLines(stderr, 40)}`));
    });
  });
  // A failed build should be retried by the next caller, not remembered.
  assetsPromise.catch(() => {
    assetsPromise = undefined;
  });
  return assetsPromise;
}

export async function startKubeTestEnv(options: KubeTestEnvOptions = {}): Promise<KubeTestEnv> {
  const binDir = await kubeAssets();
  installCleanup();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rayline-kube-'));
  liveDirs.add(dir);
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  try {
    const [certs, etcdPort, apiPort] = await Promise.all([generateCerts(dir), freePort(), freePort()]);
    const server = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    etcd = await startEtcd(binDir, dir, etcdUrl);
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, certs));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const apiArgs = apiServerArgs(dir, apiPort, etcdUrl);
    const tls = { ca: certs.ca, cert: certs.adminCert, key: certs.adminKey };

    const startApiServer = async (): Promise<void> => {
      if (apiserver && apiserver.exitCode === null && apiserver.signalCode === null) return;
      const logPath = path.join(dir, 'apiserver.log');
      apiserver = spawnLogged(path.join(binDir, 'kube-apiserver'), apiArgs, logPath);
      await waitApiServerReady(server, tls, apiserver, logPath);
    };
    const stopApiServer = async (): Promise<void> => {
      if (apiserver) await stopChild(apiserver);
    };
    await startApiServer();

    const run = (binary: string, args: string[], input?: string): Promise<CommandResult> =>
      runCommand(path.join(binDir, binary), args, {
        input,
        env: {
          ...process.env,
          KUBECONFIG: kubeconfigPath,
          // kubectl and helm cache discovery per host:port under ~/.kube; a later env on a reused port
          // would see this one's resource types.
          KUBECACHEDIR: path.join(dir, 'kube-cache'),
          // Keep helm's repositories, cache and plugins inside this env instead of the user's home.
          HELM_CACHE_HOME: path.join(dir, 'helm', 'cache'),
          HELM_CONFIG_HOME: path.join(dir, 'helm', 'config'),
          HELM_DATA_HOME: path.join(dir, 'helm', 'data'),
        },
      });

    if (options.installCrds ?? true) await installCrds(kubeConfig, path.join(repoRoot, 'crds'));

    const etcdChild = etcd;
    return {
      kubeconfigPath,
      kubeConfig,
      server,
      etcdUrl,
      binDir,
      dir,
      kubectl: (args, opts) => run('kubectl', ['--kubeconfig', kubeconfigPath, ...args], opts?.input),
      helm: (args) => run('helm', ['--kubeconfig', kubeconfigPath, ...args]),
      async restartApiServer() {
        await stopApiServer();
        await startApiServer();
      },
      stopApiServer,
      startApiServer,
      async stop() {
        await stopApiServer();
        await stopChild(etcdChild);
        await rm(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      },
    };
  } catch (err) {
    if (apiserver) await stopChild(apiserver);
    if (etcd) await stopChild(etcd);
    // Keep the folder when start fails: its logs explain why.
    liveDirs.delete(dir);
    throw err;
  }
}

/**
 * Creates every CustomResourceDefinition found in dir's *.yaml files and waits until each is
 * Established. A missing or empty folder installs nothing.
 */
export async function installCrds(
  kubeConfig: KubeConfig,
  dir: string,
  timeoutMs = 30_000,
): Promise<string[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const names: string[] = [];
  for (const file of files) {
    // loadAllYaml maps YAML names onto client-node's models; passing the raw objects would make the
    // serializer drop fields such as x-kubernetes-preserve-unknown-fields, default and enum.
    for (const doc of loadAllYaml(await readFile(path.join(dir, file), 'utf8'))) {
      if (doc?.kind !== 'CustomResourceDefinition') continue;
      const crd = doc as V1CustomResourceDefinition;
      try {
        await api.createCustomResourceDefinition({ body: crd });
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409)) {
          throw new Error(`creating CRD ${crd.metadata?.name} from ${file}: ${describe(err)}`);
        }
      }
      names.push(crd.metadata!.name!);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      if (established?.status === 'True') break;
      if (Date.now() > deadline) {
        throw new Error(`CRD ${name} not Established after ${timeoutMs} ms: ${JSON.stringify(crd.status)}`);
      }
      await sleep(100);
    }
  }
  return names;
}

interface Certs {
  ca: Buffer;
  adminCert: Buffer;
  adminKey: Buffer;
}

async function generateCerts(dir: string): Promise<Certs> {
  const certDir = path.join(dir, 'pki');
  await mkdir(certDir);
  const p = (name: string): string => path.join(certDir, name);
  // EC keys: RSA key generation would add noticeable time to every env start.
  const curve = ['-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  // Self-signed when signer is absent; -CA makes OpenSSL 3 sign the new key with the CA instead.
  const cert = (name: string, subject: string, extensions: string[], signer?: string): Promise<void> =>
    openssl([
      ...['req', '-x509', '-newkey', 'ec', ...curve, '-nodes', '-days', '3650', '-subj', subject],
      ...['-keyout', p(`${name}.key`), '-out', p(`${name}.crt`)],
      ...(signer ? ['-CA', p(`${signer}.crt`), '-CAkey', p(`${signer}.key`)] : []),
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
  await Promise.all([
    cert('ca', '/CN=rayline-test-ca', ['keyUsage=critical,keyCertSign,cRLSign']),
    openssl(['genpkey', '-algorithm', 'EC', ...curve, '-out', p('sa.key')]),
  ]);
  // kube-apiserver reads PKCS#8 private keys but not as --service-account-key-file: give it the public half.
  await openssl(['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  const leaf = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'];
  await Promise.all([
    cert(
      'serving',
      '/CN=kube-apiserver',
      [...leaf, 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      'ca',
    ),
    cert('admin', '/O=system:masters/CN=rayline-admin', [...leaf, 'extendedKeyUsage=clientAuth'], 'ca'),
  ]);
  const [ca, adminCert, adminKey] = await Promise.all(
    ['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(p(f))),
  );
  return { ca, adminCert, adminKey };
}

async function openssl(args: string[]): Promise<void> {
  const result = await runCommand('openssl', args, {});
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${result.stderr}`);
}

function kubeconfigYaml(server: string, certs: Certs): string {
  const b64 = (b: Buffer): string => b.toString('base64');
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'rayline-test', cluster: { server, 'certificate-authority-data': b64(certs.ca) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': b64(certs.adminCert), 'client-key-data': b64(certs.adminKey) },
      },
    ],
    contexts: [
      { name: 'rayline-test', context: { cluster: 'rayline-test', user: 'admin', namespace: 'default' } },
    ],
    'current-context': 'rayline-test',
  });
}

function apiServerArgs(dir: string, port: number, etcdUrl: string): string[] {
  const pki = (name: string): string => path.join(dir, 'pki', name);
  return [
    `--etcd-servers=${etcdUrl}`,
    `--secure-port=${port}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // Endpoints may not hold a loopback address, so the reconciler would only log errors forever.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki('serving.crt')}`,
    `--tls-private-key-file=${pki('serving.key')}`,
    `--client-ca-file=${pki('ca.crt')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--authorization-mode=RBAC',
    `--service-account-issuer=https://127.0.0.1:${port}/`,
    `--service-account-key-file=${pki('sa.pub')}`,
    `--service-account-signing-key-file=${pki('sa.key')}`,
  ];
}

async function startEtcd(binDir: string, dir: string, url: string): Promise<ChildProcess> {
  const logPath = path.join(dir, 'etcd.log');
  const child = spawnLogged(
    path.join(binDir, 'etcd'),
    [
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      // Port 0: the peer port is never dialled by a one-member cluster, so any free one will do.
      '--listen-peer-urls=http://127.0.0.1:0',
      '--unsafe-no-fsync',
    ],
    logPath,
  );
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}):\n${await logTail(logPath)}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return child;
    } catch {}
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`etcd not healthy after ${readyTimeoutMs} ms:\n${await logTail(logPath)}`);
    }
    await sleep(50);
  }
}

interface ClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

async function waitApiServerReady(server: string, tls: ClientTls, child: ChildProcess, logPath: string) {
  const deadline = Date.now() + readyTimeoutMs;
  // readyz alone is not enough: the default namespace appears only once RBAC bootstrap has run.
  for (const probe of ['/readyz', '/api/v1/namespaces/default']) {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `kube-apiserver exited (${child.exitCode ?? child.signalCode}):\n${await logTail(logPath)}`,
        );
      }
      if ((await httpsStatus(server + probe, tls)) === 200) break;
      if (Date.now() > deadline) {
        await stopChild(child);
        throw new Error(
          `kube-apiserver: ${probe} not 200 after ${readyTimeoutMs} ms:\n${await logTail(logPath)}`,
        );
      }
      await sleep(100);
    }
  }
}

/** The response status, or 0 when no response came (not listening yet, TLS not ready). */
function httpsStatus(url: string, tls: ClientTls): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...tls, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function spawnLogged(binary: string, args: string[], logPath: string): ChildProcess {
  const fd = openSync(logPath, 'a');
  try {
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    // A test that forgets stop() should still end; the exit hook then kills the child.
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
  await exited;
  clearTimeout(timer);
}

function runCommand(
  command: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) }));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function logTail(logPath: string): Promise<string> {
  try {
    return `--- last lines of ${logPath} ---\n${lastLines(await readFile(logPath, 'utf8'), 40)}`;
  } catch {
    return `(no log at ${logPath})`;
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function describe(err: unknown): string {
  if (err instanceof ApiException)
    return `HTTP ${err.code}: ${typeof err.body === 'string' ? err.body : JSON.stringify(err.body)}`;
  return err instanceof Error ? err.message : String(err);
}
