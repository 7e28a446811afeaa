/** The JSON Schema subset grammars enforce: translations, and refusals that name the keyword's place. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANY_OBJECT, toGrammarSchema, UnsupportedSchemaError } from './json-schema.ts';

const refusal = (schema: unknown): string => {
  try {
    toGrammarSchema(schema, 'schema');
  } catch (error) {
    assert.ok(error instanceof UnsupportedSchemaError);
    return error.path;
  }
  assert.fail('accepted');
};

test('keywords the grammar cannot enforce are refused at their place in the schema', () => {
  assert.equal(refusal({ type: 'string', pattern: '^a' }), 'schema.pattern');
  assert.equal(
    refusal({ type: 'object', properties: { age: { type: 'integer', minimum: 0 } } }),
    'schema.properties.age.minimum',
  );
  assert.equal(refusal({ allOf: [{ type: 'string' }] }), 'schema.allOf');
  assert.equal(
    refusal({ type: 'array', items: { type: 'number', multipleOf: 2 } }),
    'schema.items.multipleOf',
  );
  assert.equal(refusal({ type: 'string', format: 'email' }), 'schema.format');
  assert.equal(
    refusal({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }),
    'schema.required',
  );
  assert.equal(refusal({ $ref: 'https://example.com/s.json' }), 'schema.$ref');
  assert.equal(refusal({ type: 'strnig' }), 'schema.type');
  assert.equal(refusal({ anyOf: [{ type: 'string' }, { not: { type: 'null' } }] }), 'schema.anyOf.1.not');
  assert.equal(
    refusal({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'string' } },
      maxProperties: 1,
    }),
    'schema.maxProperties',
  );
});

test('the supported subset is translated for node-llama-cpp', () => {
  // Annotations pass; an object without properties is open; type lists become alternatives.
  assert.deepEqual(toGrammarSchema({ title: 'T', type: 'object' }), {
    type: 'object',
    properties: {},
    additionalProperties: true,
  });
  assert.deepEqual(toGrammarSchema({ type: ['string', 'null'], maxLength: 3 }), {
    oneOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }],
  });
  // Declared properties only (every one is written), anyOf as alternatives, definitions as $defs.
  assert.deepEqual(
    toGrammarSchema({
      type: 'object',
      properties: { p: { $ref: '#/definitions/P' }, q: { anyOf: [{ const: 1 }, { enum: ['a', null] }] } },
      required: ['p'],
      definitions: { P: { type: 'array', items: { type: 'integer' }, maxItems: 2 } },
    }),
    {
      type: 'object',
      properties: { p: { $ref: '#/$defs/P' }, q: { oneOf: [{ const: 1 }, { enum: ['a', null] }] } },
      additionalProperties: false,
      $defs: { P: { type: 'array', items: { type: 'integer' }, maxItems: 2 } },
    },
  );
  assert.deepEqual(toGrammarSchema({ type: ['integer', 'number'] }), { type: 'number' });
  assert.deepEqual(toGrammarSchema({ type: 'string', format: 'date' }), { type: 'string', format: 'date' });
  // No type: what the keywords imply; nothing at all: any value.
  assert.equal(toGrammarSchema({ properties: { a: { type: 'boolean' } } }).type, 'object');
  assert.ok(Array.isArray(toGrammarSchema({}).oneOf));
  assert.deepEqual(ANY_OBJECT, { type: 'object', additionalProperties: true });
});
