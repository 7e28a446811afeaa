/**
 * The serve config file (Ray's schema, snake_case): what `rayline serve deploy` sends, what
 * `PUT /api/serve/applications/` accepts and what a RayService's serveConfigV2 holds.
 */
import { z } from 'zod';
import { deploymentOptionsSchema, loggingConfigSchema } from './deployment-config.ts';
import { documentLimits, sizeProblem, valueLimits } from './document.ts';
import { formatIssues, type ValidationIssue } from './issues.ts';

/** ASCII a URL path may hold as it is (RFC 3986 pchar and "/"), and percent-escapes. */
const PREFIX_ASCII = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

/**
 * What is wrong with a route prefix, if anything. Prefixes are written as URL paths, percent-escaped
 * or not (`/caf%C3%A9` and `/café` are the same prefix), and stored and matched decoded.
 */
function routePrefixProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'must start with "/"';
  if (p !== '/' && p.endsWith('/')) return 'must not end with "/" (except the root "/")';
  if (/[{}]/.test(p)) return 'must not contain "{" or "}"';
  // Non-ASCII letters are fine (they are matched decoded); controls and spaces are not.
  const ascii = p.replace(/[^\p{ASCII}]/gu, (c) => (/[\p{Cc}\p{Z}]/u.test(c) ? ' ' : 'a'));
  if (!PREFIX_ASCII.test(ascii)) {
    return 'may hold only letters, digits, "/", percent-escapes and -._~!$&\'()*+,;=:@ (no spaces, quotes, controls, "?", "#" or "\\")';
  }
  if (/%2f/i.test(p)) return 'must not contain an encoded "/" (%2F)';
  let decoded: string;
  try {
    decoded = decodeURIComponent(p);
  } catch {
    return 'holds a percent-escape that is not UTF-8';
  }
  if (/[\p{Cc}\p{Z}%]/u.test(decoded)) return 'must not encode controls, spaces or "%"';
  if (decoded.includes('//') || /(^|\/)\.\.?(\/|$)/.test(decoded)) {
    return 'must not hold empty, "." or ".." segments';
  }
  return undefined;
}

const routePrefix = z
  .string()
  .superRefine((p, ctx) => {
    const problem = routePrefixProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .transform((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p; // refused above
    }
  });

/** `path/to/module:exportName` */
export const importPathPattern = /^[^:\s]+:[A-Za-z_$][\w$]*$/;

const importPath = z.string().regex(importPathPattern, 'must look like "path/to/module:exportName"');

export const runtimeEnvSchema = z
  .object({
    env_vars: z.record(z.string(), z.string()).optional(),
    working_dir: z.string().min(1).optional(),
  })
  .catchall(z.unknown())
  .superRefine((value, ctx) => {
    for (const key of Object.keys(value)) {
      if (key === 'env_vars' || key === 'working_dir') continue;
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `runtime_env.${key} is not supported by Rayline: install packages into the image or working_dir (supported: env_vars, working_dir)`,
      });
    }
  });

// safeExtend, not .and(z.object(...)): in an intersection zod drops the strict side's unknown-key
// issue when the other side accepts the key, so a typo such as `num_replica` passed silently.
export const deploymentOverrideSchema = deploymentOptionsSchema.safeExtend({ name: z.string().min(1) });

export const applicationSchema = z
  .strictObject({
    name: z.string().min(1).default('default'),
    route_prefix: routePrefix.nullable().default('/'),
    import_path: importPath,
    args: z
      .record(z.string(), z.unknown())
      .superRefine((value, ctx) => {
        const problem = sizeProblem(value, valueLimits, 'args');
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default({}),
    runtime_env: runtimeEnvSchema.default({}),
    deployments: z.array(deploymentOverrideSchema).default([]),
    logging_config: loggingConfigSchema.partial().optional(),
    external_scaler_enabled: z.boolean().optional(),
  })
  .superRefine((app, ctx) => {
    const seen = new Set<string>();
    app.deployments.forEach((d, i) => {
      if (seen.has(d.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['deployments', i, 'name'],
          message: `duplicate deployment name '${d.name}'`,
        });
      }
      seen.add(d.name);
    });
  });

export const httpOptionsSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8000),
  request_timeout_s: z.number().positive().nullable().default(null),
  keep_alive_timeout_s: z.number().positive().default(90),
  /** Rayline: largest request body the proxy accepts before answering 413. */
  body_limit_bytes: z
    .number()
    .int()
    .positive()
    .default(32 * 1024 * 1024),
  /**
   * Rayline: request bytes a proxy holds at once over all requests (bodies being read or waiting
   * for their answer); beyond it a request is answered 503 with Retry-After.
   */
  buffered_body_limit_bytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  root_path: z.string().default(''),
});

export const serveConfigSchema = z
  .strictObject({
    proxy_location: z.enum(['EveryNode', 'HeadOnly', 'Disabled']).default('EveryNode'),
    http_options: httpOptionsSchema.default(httpOptionsSchema.parse({})),
    grpc_options: z.record(z.string(), z.unknown()).optional(),
    logging_config: loggingConfigSchema.default(loggingConfigSchema.parse({})),
    applications: z.array(applicationSchema).default([]),
    target_capacity: z.number().min(0).max(100).nullable().optional(),
  })
  .superRefine((config, ctx) => {
    const names = new Map<string, number>();
    const prefixes = new Map<string, number>();
    config.applications.forEach((app, i) => {
      const nameAt = names.get(app.name);
      if (nameAt !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['applications', i, 'name'],
          message: `duplicate application name '${app.name}' (also applications[${nameAt}])`,
        });
      } else names.set(app.name, i);
      if (app.route_prefix === null) return;
      const prefixAt = prefixes.get(app.route_prefix);
      if (prefixAt !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['applications', i, 'route_prefix'],
          message: `route_prefix '${app.route_prefix}' is already used by applications[${prefixAt}]`,
        });
      } else prefixes.set(app.route_prefix, i);
    });
  });

export type ServeConfigInput = z.input<typeof serveConfigSchema>;
export type ServeConfig = z.output<typeof serveConfigSchema>;
export type ApplicationConfig = z.output<typeof applicationSchema>;
export type HttpOptions = z.output<typeof httpOptionsSchema>;
export type DeploymentOverride = z.output<typeof deploymentOverrideSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

/** Validates an already-parsed document (JSON or YAML) against the serve config schema. */
export function parseServeConfig(input: unknown): ParseResult<ServeConfig> {
  // Measured before the schema walks it: an alias-expanded document could make that walk endless.
  const problem = sizeProblem(input, documentLimits, '(document)');
  if (problem) return { ok: false, issues: [{ path: '(document)', message: problem }] };
  const result = serveConfigSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, issues: formatIssues(result.error) };
}
