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

function startBaseline(script: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve) => {
    const child = fork(`${root}/bench/${script}`, [String(port)], { stdio: 'inherit' });
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
    { stdio: ['ignore', 'ignore', 'inherit'], cwd: root },
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
  `${name.padEnd(30)} ${r.rps.toFixed(0).padStart(8)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  errors ${r.errors}${base ? `  ratio ${(r.rps / base.rps).toFixed(2)}` : ''}`;

const summarize = (runs: Result[]): Result => ({
  rps: median(runs.map((r) => r.rps)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
});

interface Scenario {
  baseline: { name: string; script: string };
  rayline: { name: string; config: string };
  path: string;
  body?: string;
  sequential: number;
}

const text =
  'The new solar farm opened this week and residents are delighted with the cleaner air. Engineers say the panels will power ten thousand homes. The project finished early and under budget, which the council called a wonderful result for everyone involved in it.';

const scenarios: Record<string, Scenario> = {
  noop: {
    baseline: { name: 'bare node:http', script: 'bare-server.ts' },
    rayline: { name: 'rayline proxy+replica', config: 'bench/noop.yaml' },
    path: '/',
    sequential: 3000,
  },
  pipeline: {
    baseline: { name: 'same NLP, one bare process', script: 'bare-pipeline.ts' },
    rayline: { name: 'rayline pipeline (5 replicas)', config: 'examples/pipeline/config.yaml' },
    path: '/analyze',
    body: JSON.stringify({ text }),
    sequential: 300,
  },
  batched: {
    baseline: { name: 'same classifier, unbatched', script: 'bare-classifier.ts' },
    rayline: { name: 'rayline batch() classifier', config: 'examples/batched/config.yaml' },
    path: '/classify',
    body: JSON.stringify({ text: 'The team won the championship final' }),
    sequential: 300,
  },
};

/** Baseline and Rayline run side by side and are measured in alternation, so drift hits both. */
async function compare(s: Scenario): Promise<void> {
  const baselinePort = 39000;
  const raylinePort = 39100;
  const baseline = await startBaseline(s.baseline.script, baselinePort);
  const rayline = await startRayline(s.rayline.config, raylinePort);
  const method = s.body ? 'POST' : 'GET';
  const b: Target = {
    name: s.baseline.name,
    url: `http://127.0.0.1:${baselinePort}${s.path}`,
    method,
    body: s.body,
  };
  const r: Target = {
    name: s.rayline.name,
    url: `http://127.0.0.1:${raylinePort}${s.path}`,
    method,
    body: s.body,
  };
  try {
    await load(b, 2, connections);
    await load(r, 2, connections);
    const baseRuns: Result[] = [];
    const raylineRuns: Result[] = [];
    for (let i = 0; i < rounds; i++) {
      baseRuns.push(await load(b, duration, connections));
      raylineRuns.push(await load(r, duration, connections));
    }
    const base = summarize(baseRuns);
    const ours = summarize(raylineRuns);
    const baseUs = await sequentialLatencyUs(b, s.sequential);
    const oursUs = await sequentialLatencyUs(r, s.sequential);
    console.log(`${scenario}: ${connections} connections, ${rounds} rounds of ${duration} s (medians)`);
    console.log(row(b.name, base));
    console.log(row(r.name, ours, base));
    console.log(
      `sequential p50 latency: baseline ${baseUs.toFixed(0)} us, rayline ${oursUs.toFixed(0)} us, added ${(oursUs - baseUs).toFixed(0)} us`,
    );
  } finally {
    await stop(rayline);
    baseline.kill();
  }
}

const chosen = scenarios[scenario];
if (!chosen) {
  console.error(`unknown scenario '${scenario}' (${Object.keys(scenarios).join(', ')})`);
  process.exit(1);
}
await compare(chosen);
