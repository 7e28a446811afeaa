/**
 * Compile-time typing of handles, bind() and the decorators: a fixture that imports the programming
 * model (`./index.ts`) is type-checked with the TypeScript compiler. Each wrong use is preceded by
 * `// @ts-expect-error TSxxxx ...`; the test checks both that the fixture compiles cleanly as written
 * (every expected error occurs) and that without those comments exactly the named errors appear, on
 * exactly those lines, and nowhere else.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const fixture = `import { batch, bind, deployment, type DeploymentHandle, type DeploymentResponse } from './index.ts';

class Tokenizer {
  tokenize(text: string): string[] {
    return text.split(' ');
  }
  async count(text: string): Promise<number> {
    return text.length;
  }
  echo(text: string): string {
    return text;
  }
  async *stream(n: number): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
  }
  reconfigure(_config: unknown): void {}
  checkHealth(): void {}
  __call__(x: number): boolean {
    return x > 0;
  }
  readonly label = 'tok';
}

class Ingress {
  constructor(_tokenizer: DeploymentHandle<Tokenizer>, _size: number) {}
}

class Unrelated {
  other(): void {}
}

@deployment({ numReplicas: 2 })
class Embedder {
  // The field form of batch(): callers see one item in, one result out.
  embed = batch({ maxBatchSize: 4 }, async (items: string[]) => items.map((s) => s.length));
}

export async function correct(h: DeploymentHandle<Tokenizer>) {
  const tokens: string[] = await h.tokenize.remote('a b');
  const n: number = await h.count.remote('abc');
  const chained: number = await h.count.remote(h.echo.remote('x'));
  for await (const i of h.stream.remote(3)) {
    const k: number = i;
    void k;
  }
  const ok: boolean = await h.remote(1);
  const again: DeploymentHandle<Tokenizer> = h.options({ methodName: 'count' });
  const response: DeploymentResponse<number> = h.count.remote('x');
  response.cancel();
  const caught: Promise<number | string> = h.count.remote('x').catch(() => 'failed');
  h.stream.remote(1).cancel();
  const name: string = h.deploymentName;
  const app = bind(Ingress, deployment(Tokenizer).bind(), 3);
  const app2 = deployment(Ingress).bind(deployment(Tokenizer, { numReplicas: 2 }).bind(), 4);
  const embedded: number = await new Embedder().embed('text');
  return [tokens, n, chained, ok, again, caught, name, app, app2, embedded];
}

export async function correctBatched(e: DeploymentHandle<Embedder>) {
  const viaHandle: number = await e.embed.remote('text');
  return viaHandle;
}

export async function wrong(h: DeploymentHandle<Tokenizer>, e: DeploymentHandle<Embedder>) {
  // @ts-expect-error TS2345 wrong argument type
  h.count.remote(42);
  // @ts-expect-error TS2551 misspelt method name
  h.cuont.remote('x');
  // @ts-expect-error TS2339 lifecycle hooks are not request methods
  h.reconfigure.remote({});
  // @ts-expect-error TS2339 lifecycle hooks are not request methods
  h.checkHealth.remote();
  // @ts-expect-error TS2339 a field is not a method
  h.label.remote();
  // @ts-expect-error TS2322 wrong result type
  const s: string = await h.count.remote('x');
  // @ts-expect-error TS2504 a unary response is not a stream
  for await (const x of h.count.remote('x')) void x;
  // @ts-expect-error TS2740 a stream is not a list
  const list: string[] = await h.stream.remote(2);
  // @ts-expect-error TS2345 __call__ takes a number
  await h.remote('not a number');
  // @ts-expect-error TS2345 a response of the wrong type cannot stand for an argument
  h.count.remote(h.count.remote('x'));
  // @ts-expect-error TS2554 missing argument
  h.count.remote();
  // @ts-expect-error TS2349 a method is called through .remote()
  h.count('x');
  // @ts-expect-error TS2345 bind checks plain constructor arguments
  deployment(Ingress).bind(deployment(Tokenizer).bind(), 'big');
  // @ts-expect-error TS2345 bind checks the type of a bound deployment
  bind(Ingress, deployment(Unrelated).bind(), 3);
  // @ts-expect-error TS2554 bind checks the number of arguments
  deployment(Ingress).bind(deployment(Tokenizer).bind());
  // @ts-expect-error TS2769 unknown deployment option (deployment() is overloaded)
  deployment(Tokenizer, { numReplica: 2 });
  // @ts-expect-error TS2345 a batched function takes one item
  await new Embedder().embed(['a', 'b']);
  // @ts-expect-error TS2345 and so does its handle method
  e.embed.remote(['a', 'b']);
  // @ts-expect-error TS2322 whose result is one result
  const many: number[] = await e.embed.remote('a');
  return [s, list, many];
}
`;

const here = fileURLToPath(new URL('.', import.meta.url));
/** Virtual: never written to disk; it sits in src/serve/ so that './index.ts' resolves. */
const fixturePath = ts.sys.resolvePath(`${here}handle-types.fixture.ts`);
const expectErrorLine = /^\s*\/\/ @ts-expect-error (TS\d+) /;

interface Found {
  file: string;
  line: number;
  code: number;
  text: string;
}

let options: ts.CompilerOptions;
let previous: ts.Program | undefined;

before(() => {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    ts.sys.resolvePath(`${here}../../tsconfig.json`),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) =>
        assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    },
  );
  assert.ok(parsed, 'tsconfig.json could not be read');
  options = { ...parsed.options, noEmit: true };
});

/** Type-checks `source` as the fixture; the diagnostics of the fixture and of every module it reaches. */
function check(source: string): Found[] {
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (file, language, ...rest) =>
    file === fixturePath
      ? ts.createSourceFile(file, source, language)
      : getSourceFile(file, language, ...rest);
  host.fileExists = (file) => file === fixturePath || fileExists(file);
  host.readFile = (file) => (file === fixturePath ? source : readFile(file));
  const program = ts.createProgram({ rootNames: [fixturePath], options, host, oldProgram: previous });
  previous = program;
  const fixtureFile = program.getSourceFile(fixturePath);
  assert.ok(fixtureFile);
  const reached = program.getSourceFiles().map((f) => f.fileName);
  assert.ok(
    reached.some((f) => f.endsWith('/src/serve/handle.ts')),
    'the fixture reaches the handle types',
  );
  return ts.getPreEmitDiagnostics(program).map((d) => ({
    file: d.file?.fileName ?? '(global)',
    line: d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0,
    code: d.code,
    text: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
  }));
}

const describe = (found: Found[]) => found.map((f) => `${f.file}:${f.line} TS${f.code} ${f.text}`).join('\n');

test('the fixture has wrong uses to check', () => {
  const marked = fixture.split('\n').filter((line) => expectErrorLine.test(line));
  assert.equal(marked.length, 19);
});

test('as written, with @ts-expect-error on every wrong use, the fixture compiles without errors', () => {
  const found = check(fixture);
  assert.deepEqual(found, [], describe(found));
});

test('without the @ts-expect-error comments, exactly the expected errors appear, on the wrong uses only', () => {
  const lines = fixture.split('\n');
  const expected: string[] = [];
  // Blank each comment line, keeping line numbers; its error belongs to the next line.
  const bare = lines
    .map((line, i) => {
      const match = expectErrorLine.exec(line);
      if (!match) return line;
      expected.push(`${i + 2} ${match[1]}`);
      return '';
    })
    .join('\n');
  const found = check(bare);
  const elsewhere = found.filter((f) => f.file !== fixturePath);
  assert.deepEqual(elsewhere, [], `errors outside the fixture:\n${describe(elsewhere)}`);
  assert.deepEqual(
    found.map((f) => `${f.line} TS${f.code}`),
    expected,
    describe(found),
  );
  // Spot checks that the messages are about what the comment says.
  const at = (code: number) => found.find((f) => f.code === code)?.text ?? '';
  assert.match(
    at(2551),
    /Property 'cuont' does not exist on type 'DeploymentHandle<Tokenizer>'\. Did you mean 'count'\?/,
  );
  assert.match(at(2504), /'DeploymentResponse<number>' must have a '\[Symbol\.asyncIterator\]\(\)' method/);
  assert.match(
    at(2769),
    /'numReplica' does not exist in type 'DeploymentOptions'\. Did you mean to write 'numReplicas'\?/,
  );
});
