/**
 * How KubeClient addresses resources and reads the API server's errors: URL paths per group,
 * version and scope; query strings; and Status objects turned into KubeApiErrors.
 */
import { RaylineError } from '../../errors.ts';
import { KubeApiError } from './api-error.ts';
import type { KubeStatus, ResourceType } from './resources.ts';

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

export const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  // JSON is YAML, so server-side apply takes the same body.
  apply: 'application/apply-patch+yaml',
};

/** The server's reason for a status code when its answer carried no Status object. */
const reasons: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function resourcePath(r: ResourceType, namespace?: string, name?: string, sub?: string): string {
  let path = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  if (r.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${r.plural}`;
  if (name !== undefined) {
    if (r.namespaced && !namespace)
      throw new RaylineError('RL_INTERNAL', `${r.kind} '${name}' needs a namespace`);
    path += `/${encodeURIComponent(name)}`;
  }
  return sub ? `${path}/${sub}` : path;
}

export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function describe(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const inner = cause instanceof Error ? cause.message : undefined;
  const outer = err instanceof Error ? err.message : String(err);
  return inner ? `${outer} (${inner})` : outer;
}

export function responseError(method: string, path: string, code: number, text: string): KubeApiError {
  let status: KubeStatus | undefined;
  try {
    const parsed = JSON.parse(text) as KubeStatus;
    if (parsed && parsed.kind === 'Status') status = parsed;
  } catch {
    // Not JSON (a proxy's error page): fall back to the text itself.
  }
  const reason = status?.reason || reasons[code] || 'Unknown';
  const message = status?.message || text.slice(0, 500) || `HTTP ${code}`;
  return new KubeApiError(method, path, code, reason, message, status ? { status } : undefined);
}
