/**
 * The seam between user-facing code and the runtime. `serve/` never imports the runtime: a runtime
 * process installs its implementation of this interface at start-up, and handles call through it.
 */

export interface CallTarget {
  app: string;
  deployment: string;
}

export interface CallOptions {
  methodName: string;
  multiplexedModelId: string;
}

/** One call in flight, as the runtime gives it back. Exactly one of result() or stream() is used. */
export interface PortCall {
  result(): Promise<unknown>;
  stream(): AsyncIterator<unknown>;
  cancel(): void;
}

export interface RuntimePort {
  call(target: CallTarget, options: CallOptions, args: unknown[]): PortCall;
  /** The abort signal of the request the current code runs for, if any. */
  currentSignal(): AbortSignal | undefined;
  /** Multiplexed model id of the current request ('' when none). */
  currentModelId(): string;
}

let installed: RuntimePort | undefined;

export function installRuntimePort(port: RuntimePort): void {
  installed = port;
}

export function runtimePort(): RuntimePort {
  if (!installed) {
    throw new Error(
      'no Rayline runtime in this process: handles work inside deployments started by `rayline serve run` or a Rayline cluster',
    );
  }
  return installed;
}
