/**
 * Benchmarks (not part of the tests). Compares Rayline's request path with a baseline in the same
 * run and prints medians and ratios.
 *
 *   npm run bench                      # no-op: Rayline proxy + replica vs a bare Node.js server
 *   npm run bench -- pipeline          # the examples/pipeline application
 *   npm run bench -- batched           # the examples/batched application
 *   options: --duration 10 --connections 32 --rounds 3
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const scenario = positionals[0] ?? 'noop';
const duration = Number(values.duration);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Target {
  name: string;
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(target: Target, seconds: number, conns: number): Promise<Result> {
  const result = await autocannon({
    url: target.url,
    method: target.method ?? 'GET',
    body: target.body,
    headers: target.body ? { 'content-type': 'application/json' } : {},
    connections: conns,
    duration: seconds,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

/** Median latency of sequential requests on one keep-alive connection, in microseconds. */
async function sequentialLatencyUs(target: Target, count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = request(
        target.url,
        {
          agent,
          method: target.method ?? 'GET',
          headers: target.body ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(target.body);
    });
    samples.push((performance.now() - started) * 1000);
  }
  agent.destroy();
  return median(samples.slice(Math.floor(count / 10)));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

function startBare(port: number): Promise<ChildProcess> {
  return new Promise((resolve) => {
    const child = fork(`${root}/bench/bare-server.ts`, [String(port)], { stdio: 'inherit' });
    child.once('message', () => resolve(child));
  });
}

async function startRayline(config: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      `${root}/src/cli/main.ts`,
      'serve',
      'run',
      config,
      '--port',
      String(port),
      '--dashboard-port',
      String(port + 1),
      '--metrics-port',
      String(port + 2),
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      cwd: root,
    },
  );
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port + 1}/api/serve/applications/`).catch(() => undefined);
    if (res?.ok) {
      const apps = Object.values(
        ((await res.json()) as { applications: Record<string, { status: string }> }).applications,
      );
      if (apps.length > 0 && apps.every((a) => a.status === 'RUNNING')) return child;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('Rayline did not become ready');
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

const row = (name: string, r: Result, base?: Result) =>
  `${name.padEnd(28)} ${r.rps.toFixed(0).padStart(8)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  errors ${r.errors}${base ? `  ratio ${(r.rps / base.rps).toFixed(2)}` : ''}`;

async function measureRounds(target: Target): Promise<Result> {
  const runs: Result[] = [];
  for (let i = 0; i < rounds; i++) runs.push(await load(target, duration, connections));
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
  };
}

async function noop(): Promise<void> {
  const bare = await startBare(39000);
  const rayline = await startRayline('bench/noop.yaml', 39100);
  const bareTarget = { name: 'bare node:http', url: 'http://127.0.0.1:39000/' };
  const raylineTarget = { name: 'rayline proxy+replica', url: 'http://127.0.0.1:39100/' };
  try {
    // Warm both (JIT, connections), then alternate so drift hits both alike.
    await load(bareTarget, 2, connections);
    await load(raylineTarget, 2, connections);
    const bareRuns: Result[] = [];
    const raylineRuns: Result[] = [];
    for (let i = 0; i < rounds; i++) {
      bareRuns.push(await load(bareTarget, duration, connections));
      raylineRuns.push(await load(raylineTarget, duration, connections));
    }
    const summarize = (runs: Result[]): Result => ({
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      errors: runs.reduce((n, r) => n + r.errors, 0),
    });
    const b = summarize(bareRuns);
    const r = summarize(raylineRuns);
    const bareUs = await sequentialLatencyUs(bareTarget, 3000);
    const raylineUs = await sequentialLatencyUs(raylineTarget, 3000);
    console.log(`no-op, ${connections} connections, ${rounds} rounds of ${duration} s (medians):`);
    console.log(row(bareTarget.name, b));
    console.log(row(raylineTarget.name, r, b));
    console.log(
      `sequential p50 latency: bare ${bareUs.toFixed(0)} us, rayline ${raylineUs.toFixed(0)} us, added ${(raylineUs - bareUs).toFixed(0)} us`,
    );
  } finally {
    await stop(rayline);
    bare.kill();
  }
}

async function app(config: string, target: Target): Promise<void> {
  const child = await startRayline(config, 39200);
  try {
    await load(target, 2, connections);
    const r = await measureRounds(target);
    const us = await sequentialLatencyUs(target, 300);
    console.log(`${scenario}, ${connections} connections, ${rounds} rounds of ${duration} s (medians):`);
    console.log(row(target.name, r));
    console.log(`sequential p50 latency: ${(us / 1000).toFixed(2)} ms`);
  } finally {
    await stop(child);
  }
}

const text =
  'The new solar farm opened this week and residents are delighted with the cleaner air. Engineers say the panels will power ten thousand homes. The project finished early and under budget, which the council called a wonderful result for everyone involved in it.';

if (scenario === 'noop') await noop();
else if (scenario === 'pipeline') {
  await app('examples/pipeline/config.yaml', {
    name: 'pipeline /analyze',
    url: 'http://127.0.0.1:39200/analyze',
    method: 'POST',
    body: JSON.stringify({ text }),
  });
} else if (scenario === 'batched') {
  await app('examples/batched/config.yaml', {
    name: 'batched /classify',
    url: 'http://127.0.0.1:39200/classify',
    method: 'POST',
    body: JSON.stringify({ text: 'The team won the final' }),
  });
} else {
  console.error(`unknown scenario '${scenario}' (noop, pipeline, batched)`);
  process.exit(1);
}
