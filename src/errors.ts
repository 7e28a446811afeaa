/**
 * The one error class of Rayline. Every error carries a stable `code` (documented in docs/errors.md)
 * and, where one applies, the HTTP status a proxy or the REST API answers with.
 */

export const ErrorCodes = {
  RL_CONFIG_INVALID: 400,
  RL_IMPORT_FAILED: 400,
  RL_BAD_REQUEST: 400,
  RL_UNAUTHORIZED: 401,
  RL_NOT_FOUND: 404,
  RL_TIMEOUT: 408,
  RL_BODY_TOO_LARGE: 413,
  RL_UNSUPPORTED_MEDIA_TYPE: 415,
  RL_USER_EXCEPTION: 500,
  RL_BATCH_SIZE_MISMATCH: 500,
  RL_REPLICA_DIED: 500,
  RL_NODE_LOST: 503,
  RL_INTERNAL: 500,
  RL_BACKPRESSURE: 503,
  RL_CANCELLED: 499,
  RL_UNAVAILABLE: 503,
  RL_CONNECTION: 502,
  // Raised by the CLI only (no HTTP answer carries them).
  RL_PORT_IN_USE: 409,
  RL_DEPLOY_FAILED: 503,
  RL_NODE_TOO_OLD: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class RaylineError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Field paths and reasons for validation errors. */
  readonly issues?: readonly { path: string; message: string }[];

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; issues?: readonly { path: string; message: string }[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RaylineError';
    this.code = code;
    this.statusCode = ErrorCodes[code];
    if (options?.issues) this.issues = options.issues;
  }
}

/** Raised to a caller when the deployment's queue at this caller is full (Ray: BackPressureError). */
export class BackPressureError extends RaylineError {
  constructor(deployment: string, maxQueuedRequests: number) {
    super(
      'RL_BACKPRESSURE',
      `deployment '${deployment}' has ${maxQueuedRequests} requests queued at this caller (max_queued_requests); request rejected`,
    );
    this.name = 'BackPressureError';
  }
}
