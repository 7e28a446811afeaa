/**
 * The samples in config/samples are what users copy first: each must parse with the same schemas the
 * operator uses, and every RayService's serveConfigV2 must be a serve config the head accepts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { formatIssues } from '../src/schema/issues.ts';
import { rayClusterSpecSchema } from '../src/schema/raycluster.ts';
import { rayServiceSpecSchema } from '../src/schema/rayservice.ts';
import { parseServeConfig } from '../src/schema/serve-config.ts';

const samplesDir = new URL('../config/samples/', import.meta.url);
const samples = readdirSync(samplesDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');

interface Sample {
  apiVersion: string;
  kind: string;
  spec: unknown;
}

test('there are RayCluster and RayService samples', () => {
  const kinds = samples.map((f) => (yaml.load(readFileSync(new URL(f, samplesDir), 'utf8')) as Sample).kind);
  assert.ok(kinds.filter((k) => k === 'RayCluster').length >= 2);
  assert.ok(kinds.filter((k) => k === 'RayService').length >= 2);
});

for (const file of samples) {
  test(`config/samples/${file} parses with the operator's schemas`, () => {
    const sample = yaml.load(readFileSync(new URL(file, samplesDir), 'utf8')) as Sample;
    assert.equal(sample.apiVersion, 'rayline.dev/v1');
    const schema = sample.kind === 'RayService' ? rayServiceSpecSchema : rayClusterSpecSchema;
    const parsed = schema.safeParse(sample.spec);
    assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(formatIssues(parsed.error)));
    if (sample.kind === 'RayService') {
      const config = yaml.load((sample.spec as { serveConfigV2: string }).serveConfigV2);
      const serve = parseServeConfig(config);
      assert.ok(serve.ok, serve.ok ? '' : JSON.stringify(serve.issues));
    }
  });
}
