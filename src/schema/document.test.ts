import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonDocument, parseYamlDocument, sizeProblem } from './document.ts';

function bomb(levels: number): string {
  const lines = ['a1: &a1 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 2; i <= levels; i++)
    lines.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  return lines.join('\n');
}

test('YAML aliases are measured expanded: a small bomb is refused at the limit, quickly', () => {
  const started = performance.now();
  const result = parseYamlDocument(bomb(10), { maxDepth: 64, maxBytes: 1024 * 1024 });
  assert.equal(result.ok, false);
  assert.match(!result.ok ? result.issues[0].message : '', /larger than 1048576 bytes .*aliases expanded/);
  assert.ok(performance.now() - started < 5_000);
  // Aliases within the limit are fine: they are how YAML configs share blocks.
  assert.equal(parseYamlDocument(bomb(3)).ok, true);
});

test('nesting deeper than the limit is refused with the path where it starts, not a stack overflow', () => {
  const deep = `{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
  const result = parseJsonDocument(deep, { maxDepth: 10, maxBytes: 1e9 });
  assert.equal(result.ok, false);
  assert.match(
    !result.ok ? result.issues[0].message : '',
    /^\(document\)\.a\[0\].*nested deeper than 10 levels/,
  );
  assert.equal(sizeProblem({ a: [[1]] }, { maxDepth: 3, maxBytes: 100 }, 'args'), undefined);
  assert.match(
    sizeProblem({ a: [[[1]]] }, { maxDepth: 3, maxBytes: 100 }, 'args') ?? '',
    /args\.a\[0\]\[0\]/,
  );
});

test('JSON refuses duplicate keys by path, as YAML does; escaped spellings are the same key', () => {
  const dup = parseJsonDocument('{"applications":[{"x":1},{"name":"a","n\\u0061me":"b"}]}');
  assert.deepEqual(!dup.ok && dup.issues[0].path, 'applications[1].name');
  assert.equal(parseJsonDocument('{"a":{"k":1},"b":{"k":2},"s":"\\"k\\":"}').ok, true);
  assert.equal(parseYamlDocument('a: 1\na: 2').ok, false);
});

test('a __proto__ key is refused in JSON and YAML alike', () => {
  for (const result of [
    parseJsonDocument('{"args":{"__proto__":{"x":1}}}'),
    parseYamlDocument('args:\n  __proto__: {x: 1}'),
  ]) {
    assert.equal(result.ok, false);
    assert.match(
      !result.ok ? result.issues[0].message : '',
      /\(document\)\.args: the key '__proto__' is not allowed/,
    );
  }
});
