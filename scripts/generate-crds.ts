/**
 * Writes `crds/*.yaml` from the zod schemas in `src/schema` (`npm run generate:crds`), with the
 * copies kustomize and the helm chart need (neither can read files outside its own folder). Tests
 * fail when any of them differs from what this produces.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderCrds } from '../src/schema/crd-yaml.ts';

const targets = ['../crds/', '../config/crd/bases/', '../charts/rayline-operator/files/crds/'];
for (const target of targets) {
  const dir = new URL(target, import.meta.url);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(renderCrds())) {
    writeFileSync(new URL(file, dir), text);
    console.log(`wrote ${target.slice(3)}${file}`);
  }
}
