/**
 * The runtime's implementation of the serve port: handle calls from user code become routed calls,
 * and their results come back as awaitable values or async iterators.
 */
import { RaylineError } from '../../errors.ts';
import type { CallOptions, CallTarget, PortCall, RuntimePort } from '../../serve/port.ts';
import { type Frame, FrameKind } from '../transport/frame.ts';
import { decodeValue, encodeArgs } from '../transport/value-codec.ts';
import type { CallRouter } from './call-router.ts';
import { type ResultSink, RoutedCall } from './deployment-router.ts';
import { promptOfArgs } from './prefix-affinity.ts';
import { activeRequest } from './request-context.ts';
import { sessionOfArgs } from './session-affinity.ts';
import { errorFromWire, type WireError } from './wire-error.ts';

/** Meta of a Call frame. Short keys: this is on every request. */
export interface CallMeta {
  /** method name */
  m: string;
  /** set for HTTP requests: method, url, headers */
  h?: { method: string; url: string; headers: Record<string, string> };
  /** multiplexed model id */
  mm?: string;
}

type Item = { value: unknown } | { error: RaylineError } | { done: true };

/**
 * One handle call as the caller sees it. The replica says whether the method streams (Reply versus
 * StreamStart); the caller says how it consumes (result() versus stream()). Iterating a unary call is
 * an error for the caller, never a hang. Awaiting a streaming call resolves to its chunks as an async
 * iterable: that is what lets a method return a handle's stream (`return h.words.remote(text)`), as
 * returning a response awaits it.
 */
class HandleCall implements PortCall, ResultSink {
  readonly #target: CallTarget;
  readonly #method: string;
  #routed: RoutedCall | undefined;
  #use: 'none' | 'result' | 'stream' = 'none';
  #streams = false;
  /** The unary outcome (or an early error), kept until result() asks. */
  #outcome: Item | undefined;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  #promise: Promise<unknown> | undefined;
  readonly #items: Item[] = [];
  #wake: (() => void) | undefined;
  #detach: (() => void) | undefined;

  constructor(target: CallTarget, method: string) {
    this.#target = target;
    this.#method = method;
  }

  start(routed: RoutedCall, router: ReturnType<CallRouter['router']>, signal: AbortSignal | undefined): void {
    this.#routed = routed;
    if (signal) {
      if (signal.aborted) {
        routed.done = true;
        this.onError(new RaylineError('RL_CANCELLED', 'the calling request was cancelled'));
        return;
      }
      const onAbort = () => this.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#detach = () => signal.removeEventListener('abort', onAbort);
    }
    router.submit(routed);
  }

  #misuse(what: string): RaylineError {
    return new RaylineError(
      'RL_BAD_REQUEST',
      `method '${this.#method}' of deployment '${this.#target.deployment}' ${what}`,
    );
  }

  #push(item: Item): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** A final outcome: delivered to whichever way the caller consumes. */
  #settle(item: Item): void {
    this.#detach?.();
    this.#detach = undefined;
    if (this.#use === 'stream') {
      this.#push(
        'value' in item ? { error: this.#misuse('does not stream: await the response instead') } : item,
      );
      return;
    }
    this.#outcome ??= item;
    this.#deliver();
  }

  #deliver(): void {
    const outcome = this.#outcome;
    if (!outcome || !this.#resolve) return;
    if ('value' in outcome) this.#resolve(outcome.value);
    else if ('error' in outcome) this.#reject!(outcome.error);
  }

  onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Reply:
        this.#settle({ value: decodeValue(frame.payload) });
        return;
      case FrameKind.Error:
        this.#settle({ error: errorFromWire(frame.meta as WireError) });
        return;
      case FrameKind.StreamStart:
        this.#streams = true;
        if (this.#use === 'result') this.#resolveAsStream();
        return;
      case FrameKind.Chunk:
        this.#push({ value: decodeValue(frame.payload) });
        return;
      case FrameKind.End:
        this.#detach?.();
        this.#push({ done: true });
        return;
    }
  }

  onError(error: RaylineError): void {
    this.#settle({ error });
  }

  /** An awaited streaming call: its result is the stream, iterable once, cancellable. */
  #resolveAsStream(): void {
    this.#use = 'stream';
    let iterator: AsyncIterator<unknown> | undefined;
    const chunks: AsyncIterable<unknown> & { cancel(): void } = {
      [Symbol.asyncIterator]: () => {
        iterator ??= this.stream();
        return iterator;
      },
      cancel: () => this.cancel(),
    };
    this.#resolve!(chunks);
  }

  result(): Promise<unknown> {
    if (!this.#promise) {
      this.#use = 'result';
      this.#promise = new Promise((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      if (this.#streams && !this.#outcome) this.#resolveAsStream();
      else this.#deliver();
    }
    return this.#promise;
  }

  stream(): AsyncIterator<unknown> {
    this.#use = 'stream';
    const early = this.#outcome;
    if (early)
      this.#push(
        'value' in early ? { error: this.#misuse('does not stream: await the response instead') } : early,
      );
    return {
      next: async (): Promise<IteratorResult<unknown>> => {
        while (this.#items.length === 0) await new Promise<void>((wake) => (this.#wake = wake));
        this.#wake = undefined;
        const item = this.#items.shift()!;
        if ('error' in item) throw item.error;
        if ('done' in item) return { done: true, value: undefined };
        this.#routed?.consumed();
        return { done: false, value: item.value };
      },
      return: async (): Promise<IteratorResult<unknown>> => {
        this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  cancel(): void {
    if (this.#routed?.done === false) {
      this.#routed.cancel();
      this.#settle({
        error: new RaylineError(
          'RL_CANCELLED',
          `call to '${this.#target.deployment}.${this.#method}' was cancelled`,
        ),
      });
    }
  }
}

export class HandlePort implements RuntimePort {
  readonly #router: CallRouter;

  constructor(router: CallRouter) {
    this.#router = router;
  }

  call(target: CallTarget, options: CallOptions, args: unknown[]): PortCall {
    const context = activeRequest.getStore();
    const modelId = options.multiplexedModelId || context?.modelId || '';
    const meta: CallMeta = modelId ? { m: options.methodName, mm: modelId } : { m: options.methodName };
    const call = new HandleCall(target, options.methodName);
    const routed = new RoutedCall(meta, encodeArgs(args), call);
    const router = this.#router.router(target.app, target.deployment);
    if (router.routesByPrompt) {
      routed.prompt = promptOfArgs(args);
      routed.session = sessionOfArgs(args);
    }
    call.start(routed, router, context?.signal);
    return call;
  }

  currentSignal(): AbortSignal | undefined {
    return activeRequest.getStore()?.signal;
  }

  currentModelId(): string {
    return activeRequest.getStore()?.modelId ?? '';
  }
}
