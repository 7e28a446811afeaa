/** Closed-loop HTTP load for lifecycle tests: N clients, each sending the next request when one ends. */
import { Agent, request } from 'node:http';

export interface LoadResult {
  sent: number;
  ok: number;
  failed: { id: string; status: number; body: string }[];
}

export class ClosedLoopLoad {
  readonly result: LoadResult = { sent: 0, ok: 0, failed: [] };
  #running = true;
  readonly #done: Promise<void>[] = [];
  readonly #agent = new Agent({ keepAlive: true });

  constructor(url: string, clients: number) {
    for (let c = 0; c < clients; c++) this.#done.push(this.#client(url, c));
  }

  async #client(url: string, client: number): Promise<void> {
    let n = 0;
    while (this.#running) {
      const id = `${client}-${n++}`;
      this.result.sent++;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve) => {
        const req = request(url, { agent: this.#agent, headers: { 'x-request-id': id } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', (e) => resolve({ status: 0, body: String(e) }));
        });
        req.on('error', (e) => resolve({ status: 0, body: String(e) }));
        req.end();
      });
      if (status === 200) this.result.ok++;
      else this.result.failed.push({ id, status, body });
    }
  }

  async stop(): Promise<LoadResult> {
    this.#running = false;
    await Promise.all(this.#done);
    this.#agent.destroy();
    return this.result;
  }
}
