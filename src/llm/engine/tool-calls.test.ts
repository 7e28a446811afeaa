/** Tool calls: the forced-call schemas and their replies, and calls found in a template's syntax as text streams. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnsupportedSchemaError } from './json-schema.ts';
import { forcedToolCallSchema, forcedToolCalls, ToolCallScanner } from './tool-calls.ts';
import type { ToolsRequest } from './types.ts';

const definitions = [
  { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer' } } } },
  { name: 'now' },
];

test('required: {name, arguments} of any tool, an array when parallel; named: the arguments object', () => {
  const required: ToolsRequest = { definitions, choice: 'required', parallel: false };
  const one = forcedToolCallSchema(required);
  assert.deepEqual(
    (one.oneOf as Array<{ properties: { name: unknown } }>).map((s) => s.properties.name),
    [{ const: 'add' }, { const: 'now' }],
  );
  assert.equal(forcedToolCallSchema({ ...required, parallel: true }).type, 'array');
  assert.deepEqual(forcedToolCallSchema({ ...required, choice: { name: 'add' } }), {
    type: 'object',
    properties: { a: { type: 'integer' } },
    additionalProperties: false,
  });
  const calls = forcedToolCalls({ ...required, parallel: true }, '[{"name": "add", "arguments": {"a": 2}}]');
  assert.deepEqual(
    calls?.map((c) => [c.name, c.arguments]),
    [['add', '{"a":2}']],
  );
  assert.match(calls?.[0].id ?? '', /^call_[0-9a-f]{24}$/);
  assert.equal(forcedToolCalls(required, '{"name": "add", "argum'), undefined);
  // A parameter schema the grammar cannot enforce names its tool.
  assert.throws(
    () =>
      forcedToolCallSchema({
        definitions: [
          { name: 'f', parameters: { type: 'object', properties: { s: { type: 'string', pattern: 'x' } } } },
        ],
        choice: 'required',
        parallel: false,
      }),
    (e: unknown) =>
      e instanceof UnsupportedSchemaError && e.path === 'tools.0.function.parameters.properties.s.pattern',
  );
});

const syntax = { prefix: '||call: ', paramsPrefix: '(', suffix: ')' };

test('auto: text is content, a call in the template syntax is a call, however the stream splits it', () => {
  const text = 'Let me see. ||call: add({"a": 1, "s": ")"}) and more';
  for (const size of [1, 3, 7, text.length]) {
    const scanner = new ToolCallScanner(syntax, ['add'], false);
    let content = '';
    const calls = [];
    let done = false;
    for (let i = 0; i < text.length && !done; i += size) {
      const out = scanner.push(text.slice(i, i + size));
      content += out.content;
      calls.push(...out.calls);
      done = out.done;
    }
    content += scanner.flush().content;
    assert.equal(content, 'Let me see. ', `size ${size}`);
    assert.deepEqual(
      calls.map((c) => [c.index, c.name, c.arguments]),
      [[0, 'add', '{"a":1,"s":")"}']],
      `size ${size}`,
    );
    // One call without parallel calls: the reply ends there.
    assert.ok(done, `size ${size}`);
  }
});

test('auto: parallel calls; an unknown function or broken arguments stay content', () => {
  const parallel = new ToolCallScanner(syntax, ['add'], true);
  const out = parallel.push('||call: add({"a":1})\n||call: add({"a":2})');
  assert.deepEqual(
    out.calls.map((c) => c.arguments),
    ['{"a":1}', '{"a":2}'],
  );
  assert.equal(parallel.push(' trailing words').done, true);

  const unknown = new ToolCallScanner(syntax, ['add'], true);
  assert.equal(unknown.push('||call: rm({"rf": true})').content, '||call: rm({"rf": true})');
  const broken = new ToolCallScanner(syntax, ['add'], true);
  const first = broken.push('x ||call: add({"a": 1');
  assert.equal(first.content, 'x ');
  assert.deepEqual(broken.flush(), { content: '||call: add({"a": 1', calls: [] });

  // A template that ends calls with an end-of-generation token (Llama 3.1's `</function><|eom_id|>`):
  // the text stops before the suffix does; the call is complete all the same.
  const llama = new ToolCallScanner(
    { prefix: '<function=', paramsPrefix: '>', suffix: '</function><|eom_id|>' },
    ['add'],
    true,
  );
  const streamed = llama.push('Sure. <function=add>{"a": 3}</function>');
  assert.deepEqual(streamed, { content: 'Sure. ', calls: [], done: false });
  const ended = llama.flush();
  assert.equal(ended.content, '');
  assert.deepEqual(
    ended.calls.map((c) => [c.name, c.arguments]),
    [['add', '{"a":3}']],
  );
  assert.equal(llama.callCount, 1);
});
