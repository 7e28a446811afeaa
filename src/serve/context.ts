/** What user code can learn about the request it is serving. */
import { runtimePort } from './port.ts';

export interface RequestContext {
  /** Aborted when the caller cancels: client disconnect, timeout, or `response.cancel()`. */
  signal: AbortSignal | undefined;
  /** The model id chosen by the caller with `serve_multiplexed_model_id` or handle options. */
  multiplexedModelId: string;
}

export function getRequestContext(): RequestContext {
  const port = runtimePort();
  return { signal: port.currentSignal(), multiplexedModelId: port.currentModelId() };
}
