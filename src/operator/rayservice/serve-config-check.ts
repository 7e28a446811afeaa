/**
 * Validates a RayService's serveConfigV2 with the runtime's own schema before anything is touched,
 * and points each problem at its line in the YAML the user wrote.
 */
import { isNode, LineCounter, parseDocument } from 'yaml';
import { parseServeConfig, type ServeConfig } from '../../schema/serve-config.ts';

export interface ConfigProblem {
  /** e.g. `applications[0].deployments[1].num_replicas` */
  path: string;
  /** 1-based line in serveConfigV2, when the field (or its nearest parent) is found. */
  line?: number;
  message: string;
}

export type ConfigCheck = { ok: true; config: ServeConfig } | { ok: false; problems: ConfigProblem[] };

export function checkServeConfigV2(text: string | undefined): ConfigCheck {
  if (text === undefined || text.trim() === '') {
    return {
      ok: false,
      problems: [{ path: 'serveConfigV2', message: 'is empty: give the serve config YAML' }],
    };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({
        path: '(yaml)',
        line: e.linePos?.[0]?.line,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    };
  }
  const parsed = parseServeConfig(doc.toJS());
  if (parsed.ok) return { ok: true, config: parsed.value };
  return {
    ok: false,
    problems: parsed.issues.map((issue) => ({ ...issue, line: lineOf(doc, issue.path, lineCounter) })),
  };
}

/** The line of the deepest node on the issue's path that exists in the document. */
function lineOf(
  doc: ReturnType<typeof parseDocument>,
  path: string,
  counter: LineCounter,
): number | undefined {
  const keys = [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : m[1],
  );
  for (let depth = keys.length; depth > 0; depth--) {
    const node = doc.getIn(keys.slice(0, depth), true);
    if (isNode(node) && node.range) {
      // A key's line reads better than its value's for a wrong value; the pair's key is one step up.
      return counter.linePos(node.range[0]).line;
    }
  }
  return undefined;
}

export function describeProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => `serveConfigV2${p.line ? ` line ${p.line}` : ''}: ${p.path}: ${p.message}`)
    .join('; ');
}
