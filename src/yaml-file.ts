/** Reads a YAML (or JSON) file the user names, with errors that name the file and what it is. */
import { readFileSync } from 'node:fs';
import { RaylineError } from './errors.ts';
import { parseYamlDocument } from './schema/document.ts';

/**
 * `what` names the file's role in messages, e.g. 'config file', 'autoscaling config'. The document
 * is bounded as the REST API bounds a body: depth, and size with YAML aliases expanded.
 */
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
  const parsed = parseYamlDocument(text);
  if (!parsed.ok) {
    // One line: a YAML parser's message goes on with a code frame of the offending lines.
    const problem = parsed.issues.map((i) => i.message.split('\n')[0]).join('; ');
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      problem.startsWith('not valid YAML')
        ? `${what} '${file}' is ${problem}`
        : `${what} '${file}' is refused: ${problem}`,
      { issues: parsed.issues },
    );
  }
  return parsed.value;
}
