/** Turns zod errors into `{path, message}` pairs whose path reads like the YAML it points at. */
import type { z } from 'zod';

export interface ValidationIssue {
  /** e.g. `applications[0].deployments[1].max_ongoing_requests` */
  path: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

export function formatIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: formatPath([...issue.path, key]),
        message: 'unknown field',
      }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

export function issuesToText(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}
