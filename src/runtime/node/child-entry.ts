/**
 * How Rayline starts its own child processes (replicas, application builds) the way it runs itself:
 * from TypeScript sources in this repository, or from the compiled package. Run from sources, a child
 * resolves `import 'rayline'` in user code to the sources too (the `rayline-source` export condition).
 */
import { fileURLToPath } from 'node:url';

const fromSources = import.meta.url.endsWith('.ts');

/** The file of a sibling module, `.ts` or `.js` like this one. */
export function entryPath(relativeTs: string, base: string): string {
  return fileURLToPath(new URL(fromSources ? relativeTs : relativeTs.replace(/\.ts$/, '.js'), base));
}

/** Node flags for a child: this process's own, plus the source condition when running from sources. */
export function childExecArgv(): string[] {
  const flag = '--conditions=rayline-source';
  return fromSources && !process.execArgv.includes(flag) ? [...process.execArgv, flag] : process.execArgv;
}
