/**
 * Reads the records the lifecycle fixture's replicas keep (`S id` when a request starts, `F id ms`
 * when it finishes) to tell which requests were running on replicas when they were killed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A request the method finished in the last instant before the kill counts as running: its reply was
 * still in the replica's socket buffer (written at the end of the event-loop turn) and died with it.
 */
const REPLY_IN_FLIGHT_MS = 100;

export function runningAtKill(
  recordDir: string,
  killed: readonly { id: string; atMs: number }[],
): Set<string> {
  const running = new Set<string>();
  for (const { id, atMs } of killed) {
    const lines = readFileSync(join(recordDir, `${id}.log`), 'utf8')
      .trim()
      .split('\n');
    const started = new Set(lines.filter((l) => l.startsWith('S ')).map((l) => l.slice(2)));
    for (const l of lines) {
      const [kind, request, finishedAt] = l.split(' ');
      if (kind === 'F' && Number(finishedAt) < atMs - REPLY_IN_FLIGHT_MS) started.delete(request);
    }
    for (const s of started) running.add(s);
  }
  return running;
}
