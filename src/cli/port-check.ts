/**
 * Checks every port a command is about to listen on before anything starts, so that a clash is
 * reported once, for all ports, with the flag or field that moves each one.
 */
import { createServer } from 'node:net';
import { RaylineError } from '../errors.ts';

export interface WantedPort {
  host: string;
  port: number;
  /** The flag or config field that sets this port, e.g. `--dashboard-port`. */
  setBy: string;
}

function probe(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Throws RL_PORT_IN_USE naming every port that is taken (or given twice); port 0 is any free port. */
export async function checkPortsFree(wanted: WantedPort[], hint: string): Promise<void> {
  const problems: string[] = [];
  const seen = new Map<number, string>();
  for (const { host, port, setBy } of wanted) {
    if (port === 0) continue;
    const earlier = seen.get(port);
    if (earlier) {
      problems.push(`${port} is given to both ${earlier} and ${setBy}`);
      continue;
    }
    seen.set(port, setBy);
    const failure = await probe(host, port);
    if (failure === 'EADDRINUSE') problems.push(`${host}:${port} (${setBy}) is in use`);
    else if (failure) problems.push(`${host}:${port} (${setBy}) cannot be bound: ${failure}`);
  }
  if (problems.length > 0) throw new RaylineError('RL_PORT_IN_USE', `${problems.join('; ')}; ${hint}`);
}
