/**
 * Pre-authentication flood (not part of the tests): starts a head with a token and the no-op app,
 * opens many connections to its cluster port that each send the start of a hello and then a long
 * token without a newline, and reports the head's resident memory and the proxy's latency meanwhile.
 *
 *   node bench/preauth-flood.ts [--connections 300] [--mib 4] [--seconds 10] [--sustain]
 *   node bench/preauth-flood.ts --uploads 100 --mib 31     # concurrent uploads through the proxy
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '300' },
    mib: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '10' },
    'base-port': { type: 'string', default: '23100' },
    /** Reopen each connection the head closes, for as long as the flood lasts. */
    sustain: { type: 'boolean', default: false },
    /** Instead of the cluster flood: this many concurrent uploads of --mib MiB each to the proxy. */
    uploads: { type: 'string', default: '0' },
  },
});
const connections = Number(values.connections);
const bytesPerConnection = Number(values.mib) * 1024 * 1024;
const seconds = Number(values.seconds);
const base = Number(values['base-port']);
const root = fileURLToPath(new URL('..', import.meta.url));
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const token = 'bench-token-0123456789';
const ports = { cluster: base, rest: base + 1, http: base + 2, metrics: base + 3 };
const stateDir = mkdtempSync(join(tmpdir(), 'rayline-flood-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms`);
    await sleep(200);
  }
}

const head = spawn(
  process.execPath,
  [
    join(root, 'src/cli/main.ts'),
    'start',
    '--head',
    '--block',
    `--port=${ports.cluster}`,
    `--dashboard-port=${ports.rest}`,
    `--proxy-port=${ports.http}`,
    `--metrics-port=${ports.metrics}`,
    '--node-ip-address=127.0.0.1',
    '--num-cpus=2',
  ],
  {
    env: { ...process.env, RAYLINE_API_TOKEN: token, RAYLINE_STATE_DIR: stateDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
let headExited = false;
head.once('exit', () => {
  headExited = true;
});
const rest = `http://127.0.0.1:${ports.rest}`;
const auth = { authorization: `Bearer ${token}` };
try {
  await waitFor(async () => (await fetch(`${rest}/-/healthz`)).ok, 60_000, 'head start');
  const config = {
    applications: [
      {
        name: 'noop',
        route_prefix: '/',
        import_path: 'noop-app.ts:app',
        runtime_env: { working_dir: benchDir },
        deployments: [{ name: 'Noop', max_ongoing_requests: 100 }],
      },
    ],
  };
  const put = await fetch(`${rest}/api/serve/applications/`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(config),
  });
  if (!put.ok) throw new Error(`PUT answered ${put.status}: ${await put.text()}`);
  await waitFor(
    async () => {
      const res = await fetch(`${rest}/api/serve/applications/`, { headers: auth });
      const body = (await res.json()) as { applications: Record<string, { status: string }> };
      return body.applications.noop?.status === 'RUNNING';
    },
    120_000,
    'app RUNNING',
  );
  const proxy = `http://127.0.0.1:${ports.http}/`;
  const probe = async (untilMs: number): Promise<{ latencies: number[]; failures: number }> => {
    const latencies: number[] = [];
    let failures = 0;
    while (Date.now() < untilMs) {
      const t0 = performance.now();
      try {
        const res = await fetch(proxy, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (!res.ok) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t0);
      await sleep(10);
    }
    return { latencies, failures };
  };
  const quantile = (xs: number[], q: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  };
  const baselineRss = rssBytes(head.pid!);
  const quiet = await probe(Date.now() + 3000);

  // The flood: each connection sends the start of a hello, then a token that never ends.
  let peakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(head.pid!));
  }, 50);
  const sockets: net.Socket[] = [];
  let refused = 0;
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const floodUntil = Date.now() + seconds * 1000;
  const open = () => {
    const socket = net.connect({ host: '127.0.0.1', port: ports.cluster });
    sockets.push(socket);
    socket.on('error', () => {});
    socket.once('close', () => {
      refused++;
      if (values.sustain && Date.now() < floodUntil) setTimeout(open, 1);
    });
    socket.once('connect', () => {
      socket.write('{"t":"hello","token":"');
      let written = 0;
      const pump = () => {
        while (written < bytesPerConnection && !socket.destroyed) {
          written += chunk.length;
          sent += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
  };
  const uploads = Number(values.uploads);
  const statuses: Record<string, number> = {};
  if (uploads > 0) {
    const body = Buffer.alloc(bytesPerConnection, 'u');
    for (let i = 0; i < uploads; i++) {
      const req = http.request(`${proxy}upload`, {
        method: 'POST',
        agent: false,
        headers: { 'content-length': body.length },
      });
      req.on('response', (res) => {
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        res.resume();
      });
      req.on('error', () => {
        statuses.error = (statuses.error ?? 0) + 1;
      });
      sent += body.length;
      req.end(body);
    }
  } else for (let i = 0; i < connections; i++) open();
  const during = await probe(Date.now() + seconds * 1000);
  clearInterval(sampler);
  for (const s of sockets) s.destroy();
  console.log(
    JSON.stringify(
      {
        ...(uploads > 0 ? { uploads, uploadStatuses: statuses } : { connections, sustained: values.sustain }),
        mibPerConnection: bytesPerConnection / 1024 / 1024,
        seconds,
        sentMiB: Math.round(sent / 1024 / 1024),
        connectionsClosedByHead: refused,
        headAlive: !headExited,
        baselineRssMiB: Math.round(baselineRss / 1024 / 1024),
        peakRssMiB: Math.round(peakRss / 1024 / 1024),
        quietP50Ms: Number(quantile(quiet.latencies, 0.5).toFixed(2)),
        quietP99Ms: Number(quantile(quiet.latencies, 0.99).toFixed(2)),
        floodP50Ms: Number(quantile(during.latencies, 0.5).toFixed(2)),
        floodP99Ms: Number(quantile(during.latencies, 0.99).toFixed(2)),
        floodRequests: during.latencies.length,
        floodFailures: during.failures,
      },
      null,
      2,
    ),
  );
} finally {
  if (!headExited) {
    head.kill('SIGTERM');
    await Promise.race([new Promise((r) => head.once('exit', r)), sleep(15_000)]);
    if (!headExited) head.kill('SIGKILL');
  }
  rmSync(stateDir, { recursive: true, force: true });
}
