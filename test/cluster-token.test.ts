/**
 * The cluster token on the replica transport: a replica listening on TCP for other nodes runs a
 * call only after a Hello frame with the cluster token; anything else closes the connection.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { LocalNode } from '../src/runtime/node/local-node.ts';
import type { ReplicaProcess } from '../src/runtime/node/replica-process.ts';
import { type Frame, FrameKind } from '../src/runtime/transport/frame.ts';
import { connectFramed } from '../src/runtime/transport/framed-socket.ts';
import { repoRoot } from './cluster-harness.ts';

const TOKEN = 'transport-token';
let node: LocalNode;
let replica: ReplicaProcess;

before(async () => {
  node = new LocalNode(new PassThrough().resume(), 'token-node');
  replica = node.launch({
    spec: {
      replicaId: 'tok1',
      app: 't',
      deployment: 'Where',
      route: '/t',
      importPath: 'test/fixtures/cluster-app.ts:app',
      workingDir: repoRoot,
      args: {},
      userConfig: null,
      maxOngoingRequests: 5,
      logLevel: 'warn',
      debug: false,
      nodeId: 'token-node',
      tcpHost: '127.0.0.1',
      clusterToken: TOKEN,
    },
    env: {},
    cwd: repoRoot,
  });
  await replica.start([]);
});

after(async () => {
  await replica.stop(0, 2);
  node.close();
});

const call = { m: '__call__', h: { method: 'GET', url: '/t', headers: {} } };

/** Sends `hello` (when given) then one call; resolves with the frames received until the socket closes or a reply. */
async function attempt(hello: unknown): Promise<{ frames: Frame[]; closed: boolean }> {
  const frames: Frame[] = [];
  const socket = await connectFramed(replica.tcpAddress!, (frame) => frames.push(frame));
  return new Promise((resolve) => {
    socket.onClose(() => resolve({ frames, closed: true }));
    const poll = setInterval(() => {
      if (frames.some((f) => f.kind === FrameKind.Reply)) {
        clearInterval(poll);
        socket.destroy();
        resolve({ frames, closed: false });
      }
    }, 10);
    socket.onClose(() => clearInterval(poll));
    if (hello !== undefined) socket.send(FrameKind.Hello, 0, hello);
    socket.send(FrameKind.Call, 1, call, Buffer.alloc(0));
  });
}

test('a replica on TCP runs a call only after a Hello with the cluster token', async () => {
  assert.match(replica.tcpAddress ?? '', /^127\.0\.0\.1:\d+$/);
  const none = await attempt(undefined);
  assert.deepEqual(none, { frames: [], closed: true }, 'no Hello: closed, nothing ran');
  const wrong = await attempt({ token: 'not-the-token' });
  assert.deepEqual(wrong, { frames: [], closed: true }, 'wrong token: closed, nothing ran');
  const right = await attempt({ token: TOKEN });
  assert.equal(right.closed, false);
  const reply = right.frames.find((f) => f.kind === FrameKind.Reply)!;
  assert.equal(JSON.parse(reply.payload.toString()).replica, 'tok1');
});

test('before its Hello, a TCP peer may not announce a large first frame: the replica closes at once', async () => {
  const [host, port] = replica.tcpAddress!.split(':');
  const socket = net.connect(Number(port), host);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  const header = Buffer.alloc(4);
  header.writeUInt32BE(512 * 1024 * 1024);
  socket.write(header);
  await closed;
  // The replica still serves callers that present the token.
  assert.equal((await attempt({ token: TOKEN })).closed, false);
});
