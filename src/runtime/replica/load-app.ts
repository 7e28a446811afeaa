/**
 * Resolves an `import_path` ("path/to/module:exportName") against a working directory and returns the
 * application it names, calling it with `args` when the export is a builder function.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RaylineError } from '../../errors.ts';
import { Application } from '../../serve/deployment.ts';

let tsxRegistered = false;

/** User code is TypeScript with decorators, which Node's type stripping cannot run: tsx compiles it. */
async function registerTypeScript(): Promise<void> {
  if (tsxRegistered) return;
  tsxRegistered = true;
  const { register } = await import('tsx/esm/api');
  register();
}

const extensions = ['', '.ts', '.mts', '.js', '.mjs', '/index.ts', '/index.js'];

function resolveModule(modulePath: string, workingDir: string): string {
  const base = isAbsolute(modulePath) ? modulePath : join(workingDir, modulePath);
  for (const ext of extensions) {
    const candidate = base + ext;
    if (existsSync(candidate) && !candidate.endsWith('/')) {
      if (ext === '' && !/\.[cm]?[jt]s$/.test(candidate)) continue;
      return pathToFileURL(candidate).href;
    }
  }
  // Not a file: a package specifier, resolved from the working directory.
  try {
    return pathToFileURL(createRequire(join(workingDir, 'noop.js')).resolve(modulePath)).href;
  } catch {
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `import_path module '${modulePath}' not found in working_dir '${workingDir}' (tried ${extensions.map((e) => modulePath + e).join(', ')} and a package of that name)`,
    );
  }
}

export async function loadApplication(
  importPath: string,
  workingDir: string,
  args: Record<string, unknown>,
): Promise<Application> {
  const colon = importPath.lastIndexOf(':');
  if (colon <= 0) {
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `import_path '${importPath}' must look like "path/to/module:exportName"`,
    );
  }
  const modulePath = importPath.slice(0, colon);
  const exportName = importPath.slice(colon + 1);
  const dir = resolve(workingDir);
  await registerTypeScript();
  const url = resolveModule(modulePath, dir);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (error) {
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `importing '${modulePath}' (import_path '${importPath}') failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!(exportName in mod)) {
    const available = Object.keys(mod).join(', ') || '(none)';
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `module '${modulePath}' has no export '${exportName}' (import_path '${importPath}'); exports: ${available}`,
    );
  }
  const target = mod[exportName];
  if (target instanceof Application) {
    if (Object.keys(args).length > 0) {
      throw new RaylineError(
        'RL_IMPORT_FAILED',
        `import_path '${importPath}' names an application, not a builder function, so it cannot take args`,
      );
    }
    return target;
  }
  if (typeof target === 'function') {
    const built = await (target as (args: Record<string, unknown>) => unknown)(args);
    if (built instanceof Application) return built;
    throw new RaylineError(
      'RL_IMPORT_FAILED',
      `builder '${importPath}' returned ${describe(built)}; it must return an application (Deployment.bind(...))`,
    );
  }
  throw new RaylineError(
    'RL_IMPORT_FAILED',
    `'${importPath}' is ${describe(target)}; it must be an application (Deployment.bind(...)) or a builder function`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  return `a ${typeof value}`;
}
