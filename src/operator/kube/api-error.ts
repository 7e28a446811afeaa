/**
 * Errors from the Kubernetes API. The reconcilers branch on what went wrong (not found, conflict,
 * gone), so the status code and the Status object's reason are kept as fields, and the message names
 * the request so a log line alone says what failed.
 */
import type { KubeStatus } from './resources.ts';

export class KubeApiError extends Error {
  /** HTTP status; 0 when no response came back (connection refused, reset, timeout). */
  readonly statusCode: number;
  /** The Status reason (NotFound, AlreadyExists, Conflict, Expired, Gone, Invalid...) or a local one. */
  readonly reason: string;
  readonly status?: KubeStatus;

  constructor(
    method: string,
    path: string,
    statusCode: number,
    reason: string,
    serverMessage: string,
    options?: { status?: KubeStatus; cause?: unknown },
  ) {
    super(
      `${method} ${path}: ${statusCode === 0 ? '' : `${statusCode} ${reason}: `}${serverMessage}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
    if (options?.status) this.status = options.status;
  }
}

function apiError(err: unknown): KubeApiError | undefined {
  return err instanceof KubeApiError ? err : undefined;
}

export function isNotFound(err: unknown): boolean {
  return apiError(err)?.statusCode === 404;
}

export function isConflict(err: unknown): boolean {
  return apiError(err)?.statusCode === 409 && apiError(err)?.reason !== 'AlreadyExists';
}

export function isAlreadyExists(err: unknown): boolean {
  return apiError(err)?.reason === 'AlreadyExists';
}

/** The resourceVersion asked for is older than what etcd still holds: the caller must relist. */
export function isGone(err: unknown): boolean {
  const e = apiError(err);
  return e !== undefined && (e.statusCode === 410 || e.reason === 'Expired' || e.reason === 'Gone');
}
