import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { PreAuthGate, type PreAuthRefusal } from './preauth-gate.ts';

let server: net.Server;
let port: number;
let gate: PreAuthGate;
const refusals: PreAuthRefusal[] = [];
/** What the server does with each admitted socket: authenticate on the first byte 'A'. */
const accepted: net.Socket[] = [];

before(async () => {
  gate = new PreAuthGate({
    port: 'test',
    limits: { maxPending: 6, maxPendingPerSource: 4, maxBytes: 1024, deadlineMs: 300 },
    onRefused: (reason) => refusals.push(reason),
  });
  server = net.createServer((socket) => {
    socket.on('error', () => {});
    const ticket = gate.admit(socket);
    if (!ticket) return;
    accepted.push(socket);
    socket.once('data', (chunk) => {
      if (chunk[0] === 0x41) ticket.authenticated();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  for (const s of accepted) s.destroy();
  server.close();
});

function connect(): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => {});
  });
}

const closed = (socket: net.Socket) =>
  new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a source holds at most its share of unauthenticated connections; authenticated ones stop counting', async () => {
  refusals.length = 0;
  const sockets = await Promise.all([1, 2, 3, 4, 5].map(() => connect()));
  await closed(sockets[4]);
  await until(() => refusals.length === 1);
  assert.deepEqual(refusals, ['source_limit']);
  assert.equal(gate.pending, 4);
  // One authenticates: its slot is free for another peer.
  sockets[0].write('A');
  await until(() => gate.pending === 3);
  const more = await connect();
  await until(() => gate.pending === 4);
  assert.equal(more.destroyed, false);
  for (const s of [...sockets, more]) s.destroy();
  await until(() => gate.pending === 0);
});

test('a peer is cut past the byte limit and past the deadline, and each cut is counted once', async () => {
  refusals.length = 0;
  const talker = await connect();
  talker.write(Buffer.alloc(4096, 'x'));
  await closed(talker);
  const silent = await connect();
  await closed(silent);
  assert.deepEqual(refusals.sort(), ['deadline', 'too_many_bytes']);
  assert.equal(gate.pending, 0);
});
