import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Response } from 'undici';
import { LineSplitter, readWatchStream, type WatchEvent } from './watch-stream.ts';

test('LineSplitter joins lines split across chunks and skips blank ones', () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  s.push('{"a":');
  s.push('1}\n\n{"b"');
  s.push(':2}\n{"c":3}');
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
  s.end();
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
});

function streamOf(chunks: string[]): Response {
  const enc = new TextEncoder();
  return new Response(
    new ReadableStream({
      start(c) {
        for (const chunk of chunks) c.enqueue(enc.encode(chunk));
        c.close();
      },
    }),
  );
}

test('readWatchStream parses events, including a multi-byte character split between chunks', async () => {
  const line = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'ä' } } });
  const bytes = Buffer.from(`${line}\n{"type":"ERROR","object":{"code":410}}\n`);
  const cut = bytes.indexOf(Buffer.from('ä')) + 1; // inside the two-byte character
  const res = new Response(
    new ReadableStream({
      start(c) {
        c.enqueue(bytes.subarray(0, cut));
        c.enqueue(bytes.subarray(cut));
        c.close();
      },
    }),
  );
  const events: WatchEvent<{ metadata?: { name?: string } }>[] = [];
  await readWatchStream(res, (e) => events.push(e), new AbortController().signal, '/w');
  assert.equal(events.length, 2);
  assert.equal(events[0]!.type, 'ADDED');
  assert.equal((events[0]!.object as { metadata: { name: string } }).metadata.name, 'ä');
  assert.equal(events[1]!.type, 'ERROR');
});

test('readWatchStream rejects a corrupt line with a KubeApiError naming the path', async () => {
  await assert.rejects(
    readWatchStream(streamOf(['not json\n']), () => {}, new AbortController().signal, '/api/v1/pods'),
    /GET \/api\/v1\/pods: unparseable watch line: not json/,
  );
});
