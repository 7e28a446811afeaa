/** A bare node:http server for baselines: JSON body in, the handler's value out as JSON. */
import { createServer } from 'node:http';

export function serveJson(handle: (body: { text: string }) => unknown): void {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(handle(JSON.parse(Buffer.concat(chunks).toString())));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 90_000;
  server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => process.send?.('ready'));
}
