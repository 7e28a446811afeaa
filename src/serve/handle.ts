/**
 * Typed deployment handles. `DeploymentHandle<Model>` offers Model's methods with their argument and
 * result types; `.remote()` starts the call at once and returns an awaitable (or, for async generator
 * methods, async-iterable) response that may also be passed unawaited to another handle call.
 */
import { type CallOptions, type CallTarget, type PortCall, runtimePort } from './port.ts';

type AnyMethod = (...args: never[]) => unknown;

/** Methods that are lifecycle hooks, not request handlers. */
type HookName = 'reconfigure' | 'checkHealth' | 'constructor';

export type MethodName<T> = {
  [K in keyof T]: T[K] extends AnyMethod ? (K extends HookName ? never : K) : never;
}[keyof T] &
  string;

/** An argument may be given as its value or as a response that will produce it. */
export type RemoteArgs<P extends readonly unknown[]> = { [K in keyof P]: P[K] | DeploymentResponse<P[K]> };

export type RemoteResult<R> =
  R extends AsyncIterable<infer Y> ? DeploymentResponseGenerator<Y> : DeploymentResponse<Awaited<R>>;

export interface RemoteMethod<F> {
  remote(
    ...args: F extends (...a: infer P) => unknown ? RemoteArgs<P> : never
  ): F extends (...a: never[]) => infer R ? RemoteResult<R> : never;
}

export interface HandleOptions {
  /** Method called by `handle.remote()`; default `__call__`. */
  methodName?: string;
  /**
   * Accepted for Ray compatibility and has no effect: whether a call streams is known from the
   * method itself (an async generator streams), and the response type follows from it.
   */
  stream?: boolean;
  multiplexedModelId?: string;
}

interface HandleBase<T> {
  readonly deploymentName: string;
  readonly appName: string;
  /** Calls `__call__` (or the method chosen with `options({ methodName })`). */
  remote: '__call__' extends keyof T
    ? RemoteMethod<T['__call__']>['remote']
    : (...args: unknown[]) => DeploymentResponse<unknown>;
  options(options: HandleOptions): DeploymentHandle<T>;
}

export type DeploymentHandle<T> = { readonly [K in MethodName<T>]: RemoteMethod<T[K]> } & HandleBase<T>;

/** The response of a unary call: await it, or pass it to another handle call unawaited. */
export interface DeploymentResponse<T> extends PromiseLike<T> {
  catch<B = never>(onRejected: (reason: unknown) => B | PromiseLike<B>): Promise<T | B>;
  /** Cancels the call here and in the replica running it. */
  cancel(): void;
}

/**
 * The response of a call to an async generator method: iterate it with `for await`. A method may
 * also return it (`return handle.words.remote(text)`): the caller, or the HTTP client of an ingress,
 * receives the stream.
 */
export interface DeploymentResponseGenerator<Y> extends AsyncIterable<Y> {
  cancel(): void;
}

/**
 * The one runtime class behind both response types: awaitable for unary methods, iterable for
 * streaming ones. The static type tells the caller which to use; the replica knows which it is.
 */
export class ResponseImpl implements DeploymentResponse<unknown>, DeploymentResponseGenerator<unknown> {
  readonly #call: Promise<PortCall>;
  #result: Promise<unknown> | undefined;

  constructor(call: Promise<PortCall>) {
    this.#call = call;
    // A response nobody awaits must not crash the process with an unhandled rejection.
    call.catch(() => {});
  }

  #settled(): Promise<unknown> {
    this.#result ??= this.#call.then((c) => c.result());
    return this.#result;
  }

  // biome-ignore lint/suspicious/noThenProperty: a response is deliberately awaitable
  then<A = unknown, B = never>(
    onFulfilled?: ((value: unknown) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#settled().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected: (reason: unknown) => B | PromiseLike<B>): Promise<unknown> {
    return this.#settled().catch(onRejected);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    const iterator = (await this.#call).stream();
    try {
      while (true) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Leaving the loop early (break, throw) cancels the rest of the stream.
      await iterator.return?.();
    }
  }

  cancel(): void {
    this.#call.then(
      (c) => c.cancel(),
      () => {},
    );
  }
}

/** Starts a call now; responses among the arguments are awaited first (Promise.all adopts them). */
function startCall(target: CallTarget, options: CallOptions, args: unknown[]): Promise<PortCall> {
  const port = runtimePort();
  if (!args.some((a) => a instanceof ResponseImpl)) return Promise.resolve(port.call(target, options, args));
  return Promise.all(args).then((resolved) => port.call(target, options, resolved));
}

/** Builds a handle for a deployment of an application. Runtime use; user code receives handles. */
export function createHandle<T>(
  appName: string,
  deploymentName: string,
  options?: HandleOptions,
): DeploymentHandle<T> {
  const base: CallOptions = {
    methodName: options?.methodName ?? '__call__',
    multiplexedModelId: options?.multiplexedModelId ?? '',
  };
  const target: CallTarget = { app: appName, deployment: deploymentName };
  const makeRemote = (methodName: string) => {
    const callOptions = { ...base, methodName };
    return (...args: unknown[]) => {
      const call = startCall(target, callOptions, args);
      return new ResponseImpl(call);
    };
  };
  const methods = new Map<string, { remote: (...args: unknown[]) => unknown }>();
  const handle = {
    deploymentName,
    appName,
    remote: makeRemote(base.methodName),
    options: (next: HandleOptions) => createHandle<T>(appName, deploymentName, { ...options, ...next }),
  };
  return new Proxy(handle, {
    get(target, prop) {
      if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop);
      if (prop === 'then') return undefined;
      let method = methods.get(prop);
      if (!method) {
        method = { remote: makeRemote(prop) };
        methods.set(prop, method);
      }
      return method;
    },
  }) as unknown as DeploymentHandle<T>;
}
