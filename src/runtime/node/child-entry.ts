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

/** Variables a child running user code must not inherit: the cluster's admin token. */
const SECRET_ENV = ['RAYLINE_API_TOKEN'];

/** This process's environment without its secrets, for a replica or build (user code) to inherit. */
export function inheritedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SECRET_ENV) delete env[name];
  return env;
}
