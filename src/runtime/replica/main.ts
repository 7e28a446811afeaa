/**
 * Entry point of a replica process. The node that spawned it sends `init` over IPC; the replica
 * loads the application, constructs its deployment's class (children as handles), listens on its
 * socket and reports `ready`. It exits when told to stop, or when its node goes away.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { Registry } from 'prom-client';
import { RaylineError } from '../../errors.ts';
import { createLogger } from '../../observability/logger.ts';
import { connectionMetrics, handleMetrics, replicaMetrics } from '../../observability/metrics.ts';
import { constructorArgs, walkApplication } from '../../serve/graph.ts';
import { createHandle } from '../../serve/handle.ts';
import { userMetricsJSON } from '../../serve/metrics.ts';
import { installRuntimePort } from '../../serve/port.ts';
import { tokensEqual } from '../cluster/token.ts';
import { CallRouter } from '../router/call-router.ts';
import { HandlePort } from '../router/handle-port.ts';
import { trackQueues } from '../router/queue-metrics.ts';
import { FrameKind } from '../transport/frame.ts';
import { FramedSocket } from '../transport/framed-socket.ts';
import { PreAuthGate, preAuthDefaults } from '../transport/preauth-gate.ts';
import { loadApplication } from './load-app.ts';
import type { FromReplica, ReplicaSpec, ToReplica } from './protocol.ts';
import { Replica } from './replica.ts';

const send = (message: FromReplica) => process.send?.(message);
const router = new CallRouter();
installRuntimePort(new HandlePort(router));
const registry = new Registry();

let replica: Replica | undefined;
let instance: Record<string, unknown> | undefined;
let server: net.Server | undefined;
let tcpServer: net.Server | undefined;
let spec: ReplicaSpec | undefined;
/** The newest config sent while the replica was still starting; applied before it reports ready. */
let pendingConfig: { userConfig: unknown; maxOngoingRequests: number } | undefined;
let ready = false;
/** Connections from callers, ended cleanly on a graceful stop. */
const callers = new Set<FramedSocket>();
let log = createLogger({ level: process.env.RAYLINE_LOG_LEVEL });

async function init(s: ReplicaSpec): Promise<void> {
  spec = s;
  log = createLogger({ level: s.logLevel }).child({
    component: 'replica',
    app: s.app,
    deployment: s.deployment,
    replica: s.replicaId,
  });
  trackQueues(router, handleMetrics(registry), `${s.deployment}#${s.replicaId}`);
  const root = await loadApplication(s.importPath, s.workingDir, s.args);
  const nodes = walkApplication(root);
  const node = nodes.find((n) => n.name === s.deployment);
  if (!node) {
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `application '${s.importPath}' has no deployment '${s.deployment}' (it has ${nodes.map((n) => n.name).join(', ')})`,
    );
  }
  const args = constructorArgs(node.node, nodes, (child) => createHandle(s.app, child));
  const Cls = node.deployment.cls as unknown as new (...a: unknown[]) => Record<string, unknown>;
  instance = new Cls(...args);
  pendingConfig ??= { userConfig: s.userConfig, maxOngoingRequests: s.maxOngoingRequests };
  const initial = pendingConfig;
  await reconfigure(initial.userConfig);
  replica = new Replica({
    instance,
    name: s.deployment,
    maxOngoingRequests: initial.maxOngoingRequests,
    log,
    metrics: replicaMetrics(registry),
    labels: { deployment: s.deployment, replica: s.replicaId, application: s.app, route: s.route },
    debug: s.debug,
  });
  const r = replica;
  rmSync(s.address, { force: true });
  server = net.createServer((socket) => serveCaller(r, socket));
  await listen(server, { path: s.address });
  let tcpAddress: string | undefined;
  if (s.tcpHost !== undefined) {
    const token = s.clusterToken ?? '';
    const refused = connectionMetrics(registry).preAuthRefused;
    const gate = new PreAuthGate({
      port: 'replica',
      limits: preAuthDefaults.replica,
      log,
      onRefused: (reason) => refused.inc({ port: 'replica', reason }),
    });
    tcpServer = net.createServer((socket) => serveCaller(r, socket, { token, gate }));
    const port = await listen(tcpServer, { host: s.tcpHost, port: 0 });
    tcpAddress = `${s.tcpHost}:${port}`;
  }
  // A reconfigure that arrived while the constructor ran is applied now, before serving.
  for (let applied = initial; pendingConfig && pendingConfig !== applied; ) {
    applied = pendingConfig;
    await applyConfig(applied);
  }
  pendingConfig = undefined;
  ready = true;
  log.info('replica ready');
  send({ type: 'ready', address: s.address, ...(tcpAddress ? { tcpAddress } : {}) });
  reportLoad();
}

function listen(srv: net.Server, options: net.ListenOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(options, () => resolve((srv.address() as net.AddressInfo | null)?.port ?? 0));
  });
}

/**
 * One caller's connection. On TCP (another node) the first frame must be a Hello with the
 * cluster's replica credential; anything else closes the connection before a call can run. Until
 * then the gate bounds the connection: a few kilobytes, a few seconds, a few at once per source.
 */
function serveCaller(r: Replica, socket: net.Socket, tcp?: { token: string; gate: PreAuthGate }): void {
  let authenticated = tcp === undefined;
  const ticket = tcp?.gate.admit(socket);
  if (tcp && !ticket) return;
  if (tcp) {
    // A first frame announced larger than a Hello closes the connection at once, not at the limit.
    let prefix = Buffer.alloc(0);
    const checkFirstFrame = (chunk: Buffer) => {
      prefix = Buffer.concat([prefix, chunk]).subarray(0, 4);
      if (prefix.length < 4) return;
      socket.off('data', checkFirstFrame);
      if (prefix.readUInt32BE(0) > preAuthDefaults.replica.maxBytes) socket.destroy();
    };
    socket.on('data', checkFirstFrame);
  }
  const framed = new FramedSocket(socket, (frame) => {
    if (authenticated) return r.onFrame(framed, frame);
    const presented = (frame.meta as { token?: unknown } | undefined)?.token;
    if (
      frame.kind === FrameKind.Hello &&
      typeof presented === 'string' &&
      tokensEqual(presented, tcp!.token)
    ) {
      authenticated = true;
      ticket?.authenticated();
      return;
    }
    log.warn({ peer: socket.remoteAddress }, 'refused a caller without the replica credential');
    socket.destroy();
  });
  callers.add(framed);
  framed.onClose(() => {
    callers.delete(framed);
    r.onDisconnect(framed);
  });
}

/**
 * Tells the controller, for autoscaling, how many calls run here and how many wait in this
 * replica's handles: when it changes (at most every 100 ms), and every second regardless.
 */
function reportLoad(): void {
  let last = '';
  let lastAt = 0;
  setInterval(() => {
    const load = { ongoing: replica?.ongoing ?? 0, queued: router.queuedCounts() };
    const text = JSON.stringify(load);
    if (text === last && Date.now() - lastAt < 1000) return;
    last = text;
    lastAt = Date.now();
    send({ type: 'load', ...load });
  }, 100).unref();
}

async function applyConfig(config: { userConfig: unknown; maxOngoingRequests: number }): Promise<void> {
  if (replica) replica.maxOngoingRequests = config.maxOngoingRequests;
  await reconfigure(config.userConfig);
}

async function reconfigure(userConfig: unknown): Promise<void> {
  if (userConfig === null || userConfig === undefined) return;
  const hook = instance?.reconfigure;
  if (typeof hook === 'function') await hook.call(instance, userConfig);
}

async function checkHealth(): Promise<void> {
  const hook = instance?.checkHealth;
  if (typeof hook === 'function') await hook.call(instance);
}

async function stop(waitLoopS: number, timeoutS: number): Promise<void> {
  replica?.stopAccepting();
  const deadline = Date.now() + timeoutS * 1000;
  while (replica && replica.ongoing > 0 && Date.now() < deadline) {
    await Promise.race([
      replica.idle(),
      new Promise((r) => setTimeout(r, Math.min(waitLoopS * 1000, deadline - Date.now()))),
    ]);
  }
  if (replica && replica.ongoing > 0)
    log.warn({ ongoing: replica.ongoing }, 'graceful shutdown timed out; exiting with requests running');
  await flushCallers();
  exit(0);
}

/** The last answers may still sit in corked sockets: end each connection and let it flush. */
async function flushCallers(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await Promise.race([
    Promise.all(
      [...callers].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.onClose(() => resolve());
            c.close();
          }),
      ),
    ),
    new Promise((resolve) => setTimeout(resolve, 2000)),
  ]);
}

function exit(code: number): never {
  server?.close();
  tcpServer?.close();
  if (spec) rmSync(spec.address, { force: true });
  router.close();
  process.exit(code);
}

process.on('message', (message: ToReplica) => {
  switch (message.type) {
    case 'init':
      router.nodeId = message.spec.nodeId;
      router.token = message.spec.clusterToken;
      router.update(message.routes);
      init(message.spec).catch((error: Error) => {
        log.error({ err: error }, 'replica failed to start');
        send({ type: 'init-failed', message: error.message });
        setImmediate(() => exit(1));
      });
      return;
    case 'routes':
      router.update(message.routes);
      return;
    case 'reconfigure':
      if (!ready) {
        pendingConfig = { userConfig: message.userConfig, maxOngoingRequests: message.maxOngoingRequests };
        return;
      }
      applyConfig(message).catch((error: Error) => {
        log.error({ err: error }, 'reconfigure failed');
        send({ type: 'reconfigure-failed', message: error.message });
      });
      return;
    case 'metrics':
      replica?.refreshGauges();
      Promise.all([
        registry.getMetricsAsJSON(),
        userMetricsJSON(
          spec ? { deployment: spec.deployment, replica: spec.replicaId, application: spec.app } : {},
        ),
      ]).then(([own, user]) =>
        send({ type: 'metrics', requestId: message.requestId, metrics: [...own, ...user] }),
      );
      return;
    case 'health':
      checkHealth().then(
        () => send({ type: 'health', requestId: message.requestId, ok: true }),
        (error: Error) =>
          send({ type: 'health', requestId: message.requestId, ok: false, message: error.message }),
      );
      return;
    case 'stop':
      stop(message.waitLoopS, message.timeoutS);
      return;
  }
});

// The node owns this process: if the node goes away, so does the replica.
process.on('disconnect', () => exit(0));
// A node that died while this module was still loading disconnected before anyone listened.
if (!process.connected) exit(0);
process.on('SIGINT', () => {}); // Ctrl-C reaches the whole process group; the node decides when we stop.
process.on('uncaughtException', (error) => {
  log.fatal({ err: error }, 'uncaught exception in replica');
  exit(1);
});
