/**
 * Ports for the processes a test starts on fixed ports (`rayline start`, `serve run`, a fake
 * server). They come from below the kernel's ephemeral range: the suite's own connections and port-0
 * listeners take ephemeral ports all the time, and one taken between the pick and the child's bind
 * failed a head with EADDRINUSE. Each port is checked free by binding it, and none is given twice.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

const LOWEST = 20_000;

/** The first ephemeral port (Linux: 32768 unless configured), or the top of the port range. */
function ephemeralStart(): number {
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return first > LOWEST + 1000 ? first : 65_536;
  } catch {
    return 32_768;
  }
}

const highest = ephemeralStart();
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST));
    if (given.has(port) || !(await bindable(port))) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free port between ${LOWEST} and ${highest}`);
}

export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}
