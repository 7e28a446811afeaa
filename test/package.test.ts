/**
 * A user's own project, as docs/getting-started.md builds it: `npm pack`, the tarball installed into a
 * fresh project that brings Node.js 24 and TypeScript as devDependencies, its typed application
 * type-checked with `tsc --noEmit`, served from a config file (batching, a handle's stream returned
 * from `__call__`), and a second application deployed into that running head with
 * `serve run --address`. Rayline runs from its compiled files.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from './harness.ts';
import { freePorts } from './ports.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/user-project/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rayline-package-'));
const children: ChildProcess[] = [];

after(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Type errors tsc must report: were the package's types missing or `any`, these lines would not fail. */
const typeChecks = `import { deployment, type DeploymentHandle, type ServeRequest } from 'rayline';

class Counter {
  async *count(n: number): AsyncGenerator<number> {
    yield n;
  }
}

export function checks(request: ServeRequest, counter: DeploymentHandle<Counter>) {
  // @ts-expect-error query is a URLSearchParams: parameters are read with get()
  const text: string = request.query.text;
  // @ts-expect-error count takes a number
  counter.count.remote('three');
  const chunks: AsyncIterable<number> = counter.count.remote(3);
  return { text, chunks, counter: deployment(Counter) };
}
`;

/** Exit code of a child once it exits. */
const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

test('a user project: install the packed tarball, type-check, serve with a config, deploy into the running head', async () => {
  await run('npm', ['pack', '--pack-destination', dir], { cwd: root });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  const project = join(dir, 'project');
  mkdirSync(project);
  for (const file of ['app.ts', 'config.yaml', 'tsconfig.json'])
    cpSync(join(fixture, file), join(project, file));
  writeFileSync(join(project, 'checks.ts'), typeChecks);
  const own = (await import('../package.json', { with: { type: 'json' } })).default;
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({
      name: 'my-app',
      private: true,
      type: 'module',
      scripts: { start: 'rayline serve run config.yaml', typecheck: 'tsc' },
      // npm 11 runs a dependency's install scripts only when allowed: `node` fetches its binary in one.
      allowScripts: { node: true },
      // As docs/getting-started.md has it: Rayline, TypeScript and Node are devDependencies (the
      // image provides Rayline and Node in a cluster), at the versions Rayline develops with.
      devDependencies: {
        rayline: `file:../${tarball}`,
        node: own.devDependencies.node,
        typescript: own.devDependencies.typescript,
        '@types/node': own.devDependencies['@types/node'],
      },
    }),
  );
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project });

  // npm scripts and the project's bin run on the project's Node 24, whatever node is on PATH.
  const bin = join(project, 'node_modules', '.bin');
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` };
  const version = await run(join(bin, 'node'), ['--version']);
  assert.match(version.stdout, /^v24\./);
  const typecheck = await run('npm', ['run', 'typecheck'], { cwd: project, env }).then(
    () => '',
    (error: { stdout: string; stderr: string }) => `${error.stdout}${error.stderr}`,
  );
  assert.equal(typecheck, '', 'tsc --noEmit reports no error');

  const [httpPort, dashboardPort, metricsPort] = await freePorts(3);
  const address = `http://127.0.0.1:${dashboardPort}`;
  const rayline = (...args: string[]) => {
    const child = spawn(join(bin, 'rayline'), args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const output = { text: '' };
    child.stdout!.on('data', (d) => (output.text += d));
    child.stderr!.on('data', (d) => (output.text += d));
    return { child, output };
  };
  const get = (path: string) =>
    fetch(`http://127.0.0.1:${httpPort}${path}`).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      () => ({ status: 0, body: '' }),
    );

  const head = rayline(
    'serve',
    'run',
    'config.yaml',
    '--port',
    String(httpPort),
    '--dashboard-port',
    String(dashboardPort),
    '--metrics-port',
    String(metricsPort),
  );
  const scored = await waitFor(
    async () => {
      const r = await get('/api?text=one%20two%20three');
      return r.status === 200 ? r.body : undefined;
    },
    90_000,
    () => `the installed package to serve\n${head.output.text}`,
  );
  assert.deepEqual(JSON.parse(scored), { text: 'one two three', words: 3 });
  // A stream from Scorer.words, returned by Api.__call__ through its handle.
  assert.deepEqual(await get('/api/words?text=one%20two%20three'), {
    status: 200,
    body: 'one\ntwo\nthree\n',
  });
  // logging_config.encoding TEXT is readable text even though stdout is a pipe.
  assert.match(head.output.text, /^\[[\d:.]+\] INFO: head started$/m);
  assert.doesNotMatch(head.output.text, /^\{"level"/m);

  const status = await run(join(bin, 'rayline'), ['serve', 'status', '--name', 'api', '--address', address], {
    cwd: project,
    env,
  });
  assert.match(status.stdout, /^name: api\nstatus: RUNNING\n/);
  assert.match(status.stdout, /Scorer:\n\s+status: HEALTHY\n[\s\S]*?RUNNING: 2\n/);

  // The same module as a second application, into the running head: the first one stays.
  const second = rayline(
    'serve',
    'run',
    'app.ts:app',
    '--name',
    'second',
    '--route-prefix',
    '/second',
    '--address',
    address,
  );
  await waitFor(
    () => second.output.text.includes('Applications ready: second.'),
    60_000,
    () => `serve run --address to deploy\n${second.output.text}`,
  );
  assert.deepEqual(JSON.parse((await get('/second?text=a%20b')).body), { text: 'a b', words: 2 });
  assert.equal((await get('/api?text=a')).status, 200);
  second.child.kill('SIGINT');
  assert.equal(await exited(second.child), 0, second.output.text);
  // Ctrl-C removed what it deployed, and only that.
  await waitFor(async () => (await get('/second?text=a')).status === 404, 30_000, "'second' to be removed");
  assert.equal((await get('/api?text=a')).status, 200);

  // The package ships no TypeScript sources: Rayline ran from its compiled files.
  assert.equal(existsSync(join(project, 'node_modules', 'rayline', 'src')), false);
  assert.equal(
    existsSync(join(project, 'node_modules', 'rayline', 'dist', 'runtime', 'replica', 'main.js')),
    true,
  );
  head.child.kill('SIGINT');
  assert.equal(await exited(head.child), 0, head.output.text);
});
