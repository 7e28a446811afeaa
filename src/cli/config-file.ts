/** Reads a serve config file (YAML or JSON) or turns `module:export` into a one-application config. */
import { dirname, isAbsolute, resolve } from 'node:path';
import { RaylineError } from '../errors.ts';
import { issuesToText } from '../schema/issues.ts';
import { importPathPattern, parseServeConfig, type ServeConfig } from '../schema/serve-config.ts';
import { readYamlFile } from '../yaml-file.ts';

export function readConfigFile(file: string): unknown {
  return readYamlFile(file, 'config file');
}

export function validateConfig(document: unknown, source: string): ServeConfig {
  const parsed = parseServeConfig(document);
  if (!parsed.ok) {
    throw new RaylineError('RL_CONFIG_INVALID', `invalid config ${source}: ${issuesToText(parsed.issues)}`, {
      issues: parsed.issues,
    });
  }
  return parsed.value;
}

export function looksLikeImportPath(target: string): boolean {
  return importPathPattern.test(target) && !/\.(ya?ml|json)$/i.test(target);
}

const moduleFile = /\.(m|c)?(t|j)sx?$/i;

/** A module given where a config file or `module:export` was expected: say what to write instead. */
function refuseBareModule(target: string): void {
  if (moduleFile.test(target)) {
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `'${target}' is a module, not a config file: name the application it exports, e.g. '${target}:app' (module:export)`,
    );
  }
}

export interface RunTarget {
  config: ServeConfig;
  /** logging_config.encoding as the file wrote it (the schema fills in TEXT when it is absent). */
  logEncoding?: 'TEXT' | 'JSON';
}

/**
 * The config `serve run` applies. Paths in a config file are relative to the file: a relative
 * working_dir resolves against its directory, and a missing one is that directory.
 */
export function configForRun(target: string, overrides: { routePrefix?: string; name?: string }): RunTarget {
  if (looksLikeImportPath(target)) {
    const config = validateConfig(
      {
        applications: [
          {
            name: overrides.name ?? 'default',
            route_prefix: overrides.routePrefix ?? '/',
            import_path: target,
            runtime_env: { working_dir: process.cwd() },
          },
        ],
      },
      `for '${target}'`,
    );
    return { config };
  }
  refuseBareModule(target);
  const document = readConfigFile(target);
  const config = validateConfig(document, `'${target}'`);
  const dir = dirname(resolve(target));
  for (const app of config.applications) {
    const wd = app.runtime_env.working_dir;
    app.runtime_env.working_dir = wd === undefined ? dir : isAbsolute(wd) ? wd : resolve(dir, wd);
  }
  const encoding = (document as { logging_config?: { encoding?: unknown } }).logging_config?.encoding;
  return { config, logEncoding: encoding === 'TEXT' || encoding === 'JSON' ? encoding : undefined };
}
