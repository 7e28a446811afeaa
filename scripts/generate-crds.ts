/**
 * Writes `crds/*.yaml` from the zod schemas in `src/schema` (`npm run generate:crds`). The CRD test
 * fails when the committed files differ from what this produces.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderCrds } from '../src/schema/crd-yaml.ts';

const dir = new URL('../crds/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [file, text] of Object.entries(renderCrds())) {
  writeFileSync(new URL(file, dir), text);
  console.log(`wrote crds/${file}`);
}
