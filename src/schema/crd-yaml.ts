/** The YAML text of each CRD, as committed under `crds/`. */
import yaml from 'js-yaml';
import { customResourceDefinitions } from './crd.ts';

const header = '# Generated from src/schema by `npm run generate:crds`. Do not edit by hand.\n';

export function renderCrds(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(customResourceDefinitions()).map(([file, crd]) => [
      file,
      header + yaml.dump(crd, { noRefs: true, lineWidth: 120, sortKeys: false }),
    ]),
  );
}
