import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { z } from 'zod';
import { customResourceDefinitions, type JsonSchema, toStructural } from './crd.ts';
import { renderCrds } from './crd-yaml.ts';

const crdsDir = new URL('../../crds/', import.meta.url);

test('the committed crds/ match the schemas (run `npm run generate:crds` after changing src/schema)', () => {
  const rendered = renderCrds();
  const committed = readdirSync(crdsDir).filter((f) => f.endsWith('.yaml'));
  assert.deepEqual(committed.sort(), Object.keys(rendered).sort());
  for (const [file, text] of Object.entries(rendered)) {
    assert.equal(readFileSync(new URL(file, crdsDir), 'utf8'), text, `crds/${file} is out of date`);
  }
});

/** Kubernetes' structural-schema rules, checked on every node (the API server refuses CRDs that break them). */
function structuralViolations(node: JsonSchema, path: string): string[] {
  const out: string[] = [];
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node.type === undefined && !intOrString && !preserve) out.push(`${path}: no type`);
  if (node.properties && node.additionalProperties !== undefined)
    out.push(`${path}: properties and additionalProperties`);
  for (const key of ['anyOf', 'oneOf', 'allOf', '$ref', '$schema', 'nullable', 'definitions']) {
    if (key in node) out.push(`${path}: ${key}`);
  }
  for (const [name, child] of Object.entries((node.properties as Record<string, JsonSchema>) ?? {})) {
    out.push(...structuralViolations(child, `${path}.${name}`));
  }
  if (typeof node.items === 'object')
    out.push(...structuralViolations(node.items as JsonSchema, `${path}[]`));
  if (typeof node.additionalProperties === 'object') {
    out.push(...structuralViolations(node.additionalProperties as JsonSchema, `${path}{}`));
  }
  return out;
}

test('every generated schema is structural, with the status subresource, category all and printer columns', () => {
  for (const [file, crd] of Object.entries(customResourceDefinitions())) {
    const spec = crd.spec as JsonSchema;
    const [version] = spec.versions as JsonSchema[];
    assert.ok(version);
    const root = (version.schema as JsonSchema).openAPIV3Schema as JsonSchema;
    assert.deepEqual(structuralViolations(root, file), []);
    assert.deepEqual(version.subresources, { status: {} });
    assert.deepEqual((spec.names as JsonSchema).categories, ['all']);
    assert.ok((version.additionalPrinterColumns as unknown[]).length >= 3);
  }
});

test('toStructural turns number-or-string into int-or-string and drops JS-only bounds and loose-object markers', () => {
  const schema = z.toJSONSchema(
    z.looseObject({
      q: z.union([z.string(), z.number()]),
      n: z.number().int(),
      m: z.record(z.string(), z.string()),
    }),
    { target: 'openapi-3.0', io: 'input' },
  );
  assert.deepEqual(toStructural(schema), {
    type: 'object',
    properties: {
      q: { 'x-kubernetes-int-or-string': true },
      n: { type: 'integer' },
      m: { type: 'object', additionalProperties: { type: 'string' } },
    },
    required: ['q', 'n', 'm'],
  });
});
