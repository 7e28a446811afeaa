/** The request a piece of code runs for, carried across awaits so that nested handle calls inherit
 * its cancellation and multiplexed model id. */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface ActiveRequest {
  signal: AbortSignal;
  modelId: string;
}

export const activeRequest = new AsyncLocalStorage<ActiveRequest>();
