/**
 * The JSON merge patch (RFC 7386) that turns one object into another. Keys that disappeared become
 * null, so a status written this way loses the fields it no longer has instead of keeping them
 * forever; an empty patch means nothing changed.
 */

import { canonicalJson } from './canonical-json.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** undefined when `after` equals `before`. */
export function mergePatch(before: unknown, after: unknown): Json | undefined {
  if (!isObject(before) || !isObject(after)) {
    // Key order inside arrays (conditions) differs between what we build and what the server returns.
    return canonicalJson(before) === canonicalJson(after) ? undefined : ((after ?? null) as Json);
  }
  const patch: Record<string, Json> = {};
  for (const key of Object.keys(before)) {
    if (before[key] !== undefined && after[key] === undefined) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    if (value === undefined) continue;
    const change = mergePatch(before[key], value);
    if (change !== undefined) patch[key] = change;
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}
