import { appendFileSync } from 'node:fs';
const file = process.env.RL_PROBE;
const seen = new Set<string>();
export function probe(label: string, arm = false, detail = ''): void {
  if (!file) return;
  if (arm) seen.clear();
  if (seen.has(label)) return;
  seen.add(label);
  appendFileSync(file, `${(performance.timeOrigin + performance.now()).toFixed(3)} ${process.pid} ${label} ${detail}\n`);
}
