/** Errors as they cross the transport: code, message and the user's error name survive. */
import { type ErrorCode, ErrorCodes, RaylineError } from '../../errors.ts';

export interface WireError {
  code: ErrorCode;
  message: string;
  /** The class name of the user's exception, when it is one. */
  name?: string;
  /** An HTTP status the user's error asked for (an `statusCode` property on it). */
  status?: number;
  stack?: string;
}

export function errorFromWire(wire: WireError): RaylineError {
  const code = Object.hasOwn(ErrorCodes, wire.code) ? wire.code : 'RL_INTERNAL';
  const error = new RaylineError(code, wire.message);
  if (wire.name) error.name = wire.name;
  if (wire.status) Object.assign(error, { statusCode: wire.status });
  if (wire.stack) error.stack = wire.stack;
  return error;
}

export function errorToWire(error: unknown, includeStack: boolean): WireError {
  if (error instanceof RaylineError) {
    return { code: error.code, message: error.message, name: error.name, status: error.statusCode };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  const status = (e as { statusCode?: unknown }).statusCode;
  return {
    code: 'RL_USER_EXCEPTION',
    message: e.message,
    name: e.name,
    status: typeof status === 'number' && status >= 400 && status < 600 ? status : undefined,
    stack: includeStack ? e.stack : undefined,
  };
}
