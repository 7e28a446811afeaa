/**
 * Runs inside a pod of the end-to-end suite (test/e2e/load.ts mounts it from a ConfigMap): sends
 * RATE POSTs a second of BODY to URL, open loop, each with a 20 s timeout, and keeps its counts in
 * /tmp/load-stats.json until /tmp/load-stop appears; then it lets every request end, and writes
 * the counts a last time with `done: true`.
 *   node load-client.ts URL RATE BODY
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';

const [url = '', rateArg = '50', body = '{}'] = process.argv.slice(2);
const rate = Number(rateArg);
const stats = {
  sent: 0,
  ok: 0,
  failed: 0,
  inFlight: 0,
  done: false,
  failures: [] as string[],
  latenciesMs: [] as number[],
};

function write(): void {
  writeFileSync(
    '/tmp/load-stats.json.tmp',
    JSON.stringify({ ...stats, latenciesMs: undefined, p50Ms: quantile(0.5), p99Ms: quantile(0.99) }),
  );
  renameSync('/tmp/load-stats.json.tmp', '/tmp/load-stats.json');
}

function quantile(q: number): number {
  const sorted = [...stats.latenciesMs].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function send(): Promise<void> {
  stats.sent++;
  stats.inFlight++;
  const started = performance.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    if (res.status === 200) stats.ok++;
    else fail(`${new Date().toISOString()} ${res.status} ${text.slice(0, 300)}`);
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    fail(`${new Date().toISOString()} ${String(error)}${cause ? ` (${String(cause)})` : ''}`);
  } finally {
    stats.inFlight--;
    stats.latenciesMs.push(performance.now() - started);
  }
}

function fail(line: string): void {
  stats.failed++;
  if (stats.failures.length < 50) stats.failures.push(line);
}

const sender = setInterval(() => void send(), 1000 / rate);
const reporter = setInterval(() => {
  write();
  if (!existsSync('/tmp/load-stop')) return;
  clearInterval(sender);
  if (stats.inFlight > 0) return;
  clearInterval(reporter);
  stats.done = true;
  write();
}, 250);
// Keep running (and reporting) until the pod is deleted.
setInterval(() => {}, 60_000);
