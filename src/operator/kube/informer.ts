/**
 * Informer: a local, eventually consistent copy of one resource (list, then watch), with handlers
 * for add, update and delete. Reconcilers read this cache instead of the API server. It is built to
 * outlive a flaky connection: any watch failure restarts the watch with capped, jittered backoff; a
 * 410 (history compacted) relists and turns the difference into synthetic events; a watchdog
 * restarts a watch that went silent; a periodic resync re-delivers everything so that a reconcile
 * that dropped an event still runs.
 */
import type { Logger } from 'pino';
import { isGone } from './api-error.ts';
import type { KubeClient } from './client.ts';
import { sleep } from './clock.ts';
import { type KubeObject, objectKey, type ResourceType, splitKey } from './resources.ts';
import type { WatchEvent } from './watch-stream.ts';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  /** Also called with old === new on resync. */
  onUpdate?(oldObj: T, newObj: T): void;
  /** Receives the last state known (from the DELETED event, or the cache when found gone on relist). */
  onDelete?(obj: T): void;
}

export interface InformerOptions {
  resource: ResourceType;
  /** Namespaces to watch, one list and watch each; omitted or empty: all namespaces. */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-deliver every cached object to onUpdate this often; 0 disables. Default 5 minutes. */
  resyncPeriodMs?: number;
  /** The server ends each watch after this long. Default 300. */
  watchTimeoutSeconds?: number;
  /** Restart a watch that delivered nothing (not even a bookmark) for this long. Default 2 × watchTimeoutSeconds. */
  watchdogMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
}

export type ListWatchClient = Pick<KubeClient, 'list' | 'watch'> &
  Partial<Pick<KubeClient, 'resetConnections'>>;

interface Scope {
  /** undefined: all namespaces. */
  namespace: string | undefined;
  resourceVersion: string;
  synced: boolean;
}

export class Informer<T extends KubeObject> {
  readonly #client: ListWatchClient;
  readonly #opts: Required<Omit<InformerOptions, 'logger' | 'labelSelector' | 'fieldSelector'>> &
    InformerOptions;
  readonly #handlers: InformerHandlers<T>[] = [];
  readonly #scopes: Scope[];
  /** One store per scope, replaced whole on relist so readers never see a half-updated cache. */
  readonly #stores = new Map<string, Map<string, T>>();
  readonly #log: Logger | undefined;
  #stop = new AbortController();
  #loops: Promise<void>[] = [];
  #resyncTimer: NodeJS.Timeout | undefined;
  #syncWaiters: (() => void)[] = [];

  constructor(client: ListWatchClient, options: InformerOptions) {
    this.#client = client;
    const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
    this.#opts = {
      namespaces: [],
      resyncPeriodMs: 5 * 60_000,
      watchdogMs: 2 * watchTimeoutSeconds * 1000,
      backoffBaseMs: 500,
      backoffMaxMs: 30_000,
      ...options,
      watchTimeoutSeconds,
    };
    const namespaces = [...new Set(this.#opts.namespaces)];
    const scopes = namespaces.length > 0 ? namespaces : [undefined];
    this.#scopes = scopes.map((namespace) => ({ namespace, resourceVersion: '', synced: false }));
    this.#log = options.logger?.child({ resource: options.resource.plural });
  }

  /** Handlers added after the first sync receive every cached object as an add first. */
  addHandlers(handlers: InformerHandlers<T>): void {
    this.#handlers.push(handlers);
    if (this.hasSynced()) for (const obj of this.list()) this.#call(handlers, 'onAdd', obj);
  }

  start(): void {
    if (this.#loops.length > 0) return;
    this.#stop = new AbortController();
    this.#loops = this.#scopes.map((scope) => this.#run(scope));
    if (this.#opts.resyncPeriodMs > 0) {
      this.#resyncTimer = setInterval(() => this.#resync(), this.#opts.resyncPeriodMs);
      this.#resyncTimer.unref();
    }
  }

  /** Ends every watch; resolves once their loops have returned. */
  async stop(): Promise<void> {
    this.#stop.abort();
    clearInterval(this.#resyncTimer);
    await Promise.all(this.#loops);
    this.#loops = [];
    for (const waiter of this.#syncWaiters.splice(0)) waiter();
  }

  hasSynced(): boolean {
    return this.#scopes.every((s) => s.synced);
  }

  /** Resolves once every namespace was listed; rejects if signal aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal?.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      this.#syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        if (this.hasSynced()) resolve();
        else reject(new Error(`informer for ${this.#opts.resource.plural} stopped before it synced`));
      });
    });
  }

  /** The cached object with this `namespace/name` key. */
  get(key: string): T | undefined {
    return this.#storeFor(splitKey(key).namespace)?.get(key);
  }

  /** Cached objects, of one namespace or all. */
  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const store of this.#stores.values()) {
      for (const obj of store.values())
        if (namespace === undefined || obj.metadata?.namespace === namespace) out.push(obj);
    }
    return out;
  }

  #storeFor(namespace: string | undefined): Map<string, T> | undefined {
    return this.#scopes[0]!.namespace === undefined
      ? this.#stores.get('')
      : this.#stores.get(namespace ?? '');
  }

  async #run(scope: Scope): Promise<void> {
    const signal = this.#stop.signal;
    const log = this.#log?.child({ namespace: scope.namespace ?? '*' });
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.#relist(scope, signal);
          needList = false;
          if (signal.aborted) break;
        }
        const outcome = await this.#watch(scope, signal, log);
        if (outcome.received > 0 || (outcome.end === 'ended' && outcome.ms >= 1000)) failures = 0;
        else failures++;
        if (outcome.end === 'gone') needList = true;
        if (outcome.end !== 'ended' && !signal.aborted) log?.info({ end: outcome.end }, 'restarting watch');
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) needList = true;
        failures++;
        log?.warn({ err, failures, relist: needList }, 'list or watch failed; retrying');
      }
      if (failures > 0) await sleep(this.#backoff(failures), signal);
    }
  }

  /** Capped exponential delay with equal jitter, so restarting informers do not reconnect in step. */
  #backoff(failures: number): number {
    const ceiling = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffBaseMs * 2 ** (failures - 1));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  async #relist(scope: Scope, signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.#client.list<T>(this.#opts.resource, {
      namespace: scope.namespace,
      labelSelector: this.#opts.labelSelector,
      fieldSelector: this.#opts.fieldSelector,
      signal,
    });
    if (signal.aborted) return;
    const fresh = new Map<string, T>();
    for (const obj of items) fresh.set(objectKey(obj), obj);
    const id = scope.namespace ?? '';
    const old = this.#stores.get(id) ?? new Map<string, T>();
    this.#stores.set(id, fresh);
    scope.resourceVersion = resourceVersion;
    // Handlers run after the swap: whatever they read from the cache is already the new state.
    for (const [key, obj] of old) if (!fresh.has(key)) this.#emit('onDelete', obj);
    for (const [key, obj] of fresh) {
      const before = old.get(key);
      if (!before) this.#emit('onAdd', obj);
      else if (before.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        this.#emit('onUpdate', before, obj);
    }
    if (!scope.synced) {
      scope.synced = true;
      if (this.hasSynced()) for (const waiter of this.#syncWaiters.splice(0)) waiter();
    }
  }

  async #watch(
    scope: Scope,
    stopSignal: AbortSignal,
    log: Logger | undefined,
  ): Promise<{ end: 'ended' | 'gone' | 'error' | 'stalled'; received: number; ms: number }> {
    const started = performance.now();
    // This watch's own controller (the watchdog aborts it), also aborted by stop(); the listener on
    // the long-lived stop signal is removed when the watch ends.
    const ac = new AbortController();
    const abort = () => ac.abort();
    if (stopSignal.aborted) abort();
    else stopSignal.addEventListener('abort', abort, { once: true });
    let end: 'ended' | 'gone' | 'error' | 'stalled' = 'ended';
    let received = 0;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        end = 'stalled';
        log?.warn({ watchdogMs: this.#opts.watchdogMs }, 'watch silent past its deadline');
        ac.abort();
        // The connection is likely dead, and over HTTP/2 a new watch would reuse it.
        this.#client.resetConnections?.();
      }, this.#opts.watchdogMs);
    };
    const onEvent = (event: WatchEvent<T>) => {
      arm();
      if (event.type === 'ERROR') {
        end = event.object.code === 410 ? 'gone' : 'error';
        log?.info({ code: event.object.code, message: event.object.message }, 'watch error event');
        ac.abort();
        return;
      }
      received++;
      this.#apply(scope, event);
    };
    try {
      arm();
      await this.#client.watch<T>(
        this.#opts.resource,
        {
          namespace: scope.namespace,
          resourceVersion: scope.resourceVersion,
          labelSelector: this.#opts.labelSelector,
          fieldSelector: this.#opts.fieldSelector,
          timeoutSeconds: this.#opts.watchTimeoutSeconds,
          allowWatchBookmarks: true,
        },
        onEvent,
        ac.signal,
      );
    } finally {
      clearTimeout(watchdog);
      stopSignal.removeEventListener('abort', abort);
    }
    return { end, received, ms: performance.now() - started };
  }

  #apply(scope: Scope, event: Exclude<WatchEvent<T>, { type: 'ERROR' }>): void {
    const obj = event.object;
    const rv = obj.metadata?.resourceVersion;
    if (rv) scope.resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    const id = scope.namespace ?? '';
    let store = this.#stores.get(id);
    if (!store) {
      store = new Map();
      this.#stores.set(id, store);
    }
    const key = objectKey(obj);
    const before = store.get(key);
    if (event.type === 'DELETED') {
      store.delete(key);
      this.#emit('onDelete', obj);
    } else {
      store.set(key, obj);
      if (before) this.#emit('onUpdate', before, obj);
      else this.#emit('onAdd', obj);
    }
  }

  #resync(): void {
    if (!this.hasSynced()) return;
    for (const obj of this.list()) this.#emit('onUpdate', obj, obj);
  }

  #emit(kind: 'onAdd' | 'onDelete', obj: T): void;
  #emit(kind: 'onUpdate', before: T, after: T): void;
  #emit(kind: keyof InformerHandlers<T>, a: T, b?: T): void {
    for (const h of this.#handlers) this.#call(h, kind, a, b);
  }

  #call(h: InformerHandlers<T>, kind: keyof InformerHandlers<T>, a: T, b?: T): void {
    try {
      if (kind === 'onUpdate') h.onUpdate?.(a, b ?? a);
      else h[kind]?.(a);
    } catch (err) {
      this.#log?.error({ err, handler: kind, object: objectKey(a) }, 'informer handler threw');
    }
  }
}
