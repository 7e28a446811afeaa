/** Reads a YAML (or JSON) file the user names, with errors that name the file and what it is. */
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { RaylineError } from './errors.ts';

/** `what` names the file's role in messages, e.g. 'config file', 'autoscaling config'. */
export function readYamlFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `cannot read ${what} '${file}': ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  try {
    return yaml.load(text) ?? {};
  } catch (error) {
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `${what} '${file}' is not valid YAML: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
