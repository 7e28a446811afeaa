/**
 * Remote model sources against a loopback HTTP server: https-style URLs and hf:// references
 * (through HF_ENDPOINT) are downloaded into the cache once and used from it after; a failed download
 * names the source, the URL and the cause, and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeTinyLlama } from './gguf/tiny-llama.ts';
import { isRemoteSource, modelCacheDir, modelPath, parseModelSource } from './model-source.ts';

let dir: string;
let base: string;
let model: Buffer;
const requests: string[] = [];
const server = createServer((req, res) => {
  requests.push(req.url ?? '');
  if (req.url === '/files/tiny.gguf' || req.url === '/org/tiny/resolve/v1/sub/tiny.gguf') {
    res.setHeader('content-length', model.length);
    res.end(model);
    return;
  }
  res.statusCode = 404;
  res.end('no such file');
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rayline-model-source-'));
  const { path } = await writeTinyLlama(join(dir, 'tiny.gguf'), { seed: 5 });
  model = readFileSync(path);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

test('the cache folder: RAYLINE_MODEL_CACHE, else XDG_CACHE_HOME, else ~/.cache', () => {
  assert.equal(modelCacheDir({ RAYLINE_MODEL_CACHE: '/c' }), '/c');
  assert.equal(modelCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/rayline/models');
  assert.match(modelCacheDir({}), /\.cache\/rayline\/models$/);
  assert.ok(isRemoteSource('hf://a/b/c.gguf') && isRemoteSource('https://h/m.gguf'));
  assert.ok(!isRemoteSource('models/m.gguf') && !isRemoteSource('tiny:seed=1'));
});

test('hf:// references map to the hub resolve URL; bad ones name the expected form', () => {
  const s = parseModelSource('hf://org/repo/dir/m.gguf', '/', { RAYLINE_MODEL_CACHE: '/c' });
  assert.deepEqual(s, {
    kind: 'remote',
    source: 'hf://org/repo/dir/m.gguf',
    url: 'https://huggingface.co/org/repo/resolve/main/dir/m.gguf',
    path: '/c/huggingface/org/repo/main/dir/m.gguf',
  });
  const pinned = parseModelSource('hf://org/repo@abc123/m.gguf', '/', { HF_TOKEN: 't' });
  assert.equal(
    pinned.kind === 'remote' && pinned.url,
    'https://huggingface.co/org/repo/resolve/abc123/m.gguf',
  );
  assert.equal(pinned.kind === 'remote' && pinned.token, 't');
  assert.throws(() => parseModelSource('hf://org/repo'), /'hf:\/\/org\/repo' is not hf:\/\/owner\/repo/);
  assert.throws(() => parseModelSource('hf://org/repo/../x.gguf'), /is not hf:\/\//);
  // A local path that is not there mentions the remote forms too.
  assert.throws(() => parseModelSource('org/model', '/srv'), /not found .*hf:\/\/owner\/repo/);
});

test('a URL is downloaded into the cache once, then used from it', async () => {
  const env = { RAYLINE_MODEL_CACHE: join(dir, 'cache') };
  const source = parseModelSource(`${base}/files/tiny.gguf`, '/', env);
  const before = requests.length;
  const path = await modelPath(source);
  assert.ok(path.startsWith(join(dir, 'cache', 'url')), path);
  assert.ok(path.endsWith('/tiny.gguf'));
  assert.deepEqual(await readFile(path), model);
  assert.equal(await modelPath(parseModelSource(`${base}/files/tiny.gguf`, '/', env)), path);
  assert.equal(requests.length - before, 1, 'the second use asked the network again');
});

test('hf:// through HF_ENDPOINT, with a revision and a path in the repo', async () => {
  const env = { RAYLINE_MODEL_CACHE: join(dir, 'cache'), HF_ENDPOINT: `${base}/` };
  const path = await modelPath(parseModelSource('hf://org/tiny@v1/sub/tiny.gguf', '/', env));
  assert.equal(path, join(dir, 'cache', 'huggingface', 'org', 'tiny', 'v1', 'sub', 'tiny.gguf'));
  assert.deepEqual(await readFile(path), model);
});

test('a failed download names the source, the URL and the cause, and leaves no file', async () => {
  const cache = join(dir, 'cache-fail');
  const missing = parseModelSource(`${base}/files/nope.gguf`, '/', { RAYLINE_MODEL_CACHE: cache });
  await assert.rejects(modelPath(missing), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'RL_UNAVAILABLE');
    assert.match(
      error.message,
      new RegExp(`model_source '${base}/files/nope.gguf': downloading .* failed: HTTP 404`),
    );
    return true;
  });
  // A port just freed, where nothing listens: the network error's code is in the message.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const unreachable = parseModelSource('hf://org/repo/m.gguf', '/', {
    RAYLINE_MODEL_CACHE: cache,
    HF_ENDPOINT: `http://127.0.0.1:${port}`,
  });
  await assert.rejects(modelPath(unreachable), (error: Error) => {
    const url = `http://127.0.0.1:${port}/org/repo/resolve/main/m.gguf`;
    assert.ok(
      error.message.startsWith(
        `model_source 'hf://org/repo/m.gguf': downloading ${url} failed: fetch failed (ECONNREFUSED)`,
      ),
      error.message,
    );
    return true;
  });
  const left = await readdir(cache, { recursive: true, withFileTypes: true });
  assert.deepEqual(
    left.filter((e) => e.isFile()).map((e) => e.name),
    [],
  );
});
