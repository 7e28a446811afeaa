/**
 * KubeClient: a thin typed REST client for the handful of verbs the operator uses. client-node
 * supplies configuration and authentication (headers, TLS); requests go through undici's fetch, the
 * way client-node's own Watch does, so that watches can be streamed and cancelled with one signal.
 */
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch, type Response } from 'undici';
import { RaylineError } from '../../errors.ts';
import { KubeApiError } from './api-error.ts';
import { describe, type PatchType, patchContentTypes, query, resourcePath, responseError } from './http.ts';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.ts';
import { readWatchStream, type WatchEvent } from './watch-stream.ts';

export type { PatchType, WatchEvent };

export interface RequestOptions {
  signal?: AbortSignal;
}
export interface WriteOptions extends RequestOptions {
  fieldManager?: string;
  dryRun?: boolean;
}
export interface PatchOptions extends WriteOptions {
  /** Server-side apply only: take ownership of fields other managers own. */
  force?: boolean;
}
export interface ListOptions extends RequestOptions {
  /** Omitted: all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}
export interface DeleteOptions extends RequestOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
}
export interface WatchOptions {
  namespace?: string;
  resourceVersion: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** The server ends the stream after this long. */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
}
export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface KubeClientOptions {
  /** Bound on every request except watch streams (a watch's headers must still arrive within it). */
  requestTimeoutMs?: number;
  /** Page size for list; pages are fetched and joined. */
  listPageSize?: number;
  /** Sent as User-Agent; the API server also names field managers and audit entries after it. */
  userAgent?: string;
}

interface Body {
  contentType: string;
  data: unknown;
}

function metaOf(obj: KubeObject): { namespace: string | undefined; name: string } {
  const name = obj.metadata?.name;
  if (!name) throw new RaylineError('RL_INTERNAL', `${obj.kind ?? 'object'} has no metadata.name`);
  return { namespace: obj.metadata?.namespace, name };
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly #requestTimeoutMs: number;
  readonly #pageSize: number;
  readonly #userAgent: string;
  // client-node builds a new undici Agent for every request; keeping the first one lets requests
  // share keep-alive connections instead of opening a TLS session each.
  #dispatcher: Dispatcher | undefined;

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}) {
    this.kubeConfig = kubeConfig;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#pageSize = options.listPageSize ?? 500;
    this.#userAgent = options.userAgent ?? 'rayline-operator';
  }

  async get<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: RequestOptions = {},
  ): Promise<T | null> {
    try {
      return (await this.#json('GET', resourcePath(r, namespace, name), undefined, opts.signal)) as T;
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return null;
      throw err;
    }
  }

  async list<T extends KubeObject>(r: ResourceType, opts: ListOptions = {}): Promise<ListResult<T>> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const path =
        resourcePath(r, opts.namespace) +
        query({
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          limit: this.#pageSize,
          continue: cont,
        });
      const page = (await this.#json('GET', path, undefined, opts.signal)) as {
        items?: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      // Every page belongs to the first page's snapshot; its resourceVersion is the list's.
      if (!cont) resourceVersion = page.metadata?.resourceVersion ?? '';
      for (const item of page.items ?? []) {
        // List items come without apiVersion and kind; filling them in keeps cached objects uniform.
        items.push({ ...item, apiVersion: apiVersionOf(r), kind: r.kind });
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  async create<T extends KubeObject>(r: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    const body = { apiVersion: apiVersionOf(r), kind: r.kind, ...obj };
    const path = resourcePath(r, obj.metadata?.namespace) + writeQuery(opts);
    return (await this.#json('POST', path, json(body), opts.signal)) as T;
  }

  async replace<T extends KubeObject>(r: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    const { namespace, name } = metaOf(obj);
    const path = resourcePath(r, namespace, name) + writeQuery(opts);
    return (await this.#json(
      'PUT',
      path,
      json({ apiVersion: apiVersionOf(r), kind: r.kind, ...obj }),
      opts.signal,
    )) as T;
  }

  async replaceStatus<T extends KubeObject>(r: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    const { namespace, name } = metaOf(obj);
    const path = resourcePath(r, namespace, name, 'status') + writeQuery(opts);
    return (await this.#json(
      'PUT',
      path,
      json({ apiVersion: apiVersionOf(r), kind: r.kind, ...obj }),
      opts.signal,
    )) as T;
  }

  patch<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    body: object,
    opts: PatchOptions = {},
  ): Promise<T> {
    return this.#patch<T>(resourcePath(r, namespace, name), type, body, opts);
  }

  patchStatus<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    body: object,
    opts: PatchOptions = {},
  ): Promise<T> {
    return this.#patch<T>(resourcePath(r, namespace, name, 'status'), type, body, opts);
  }

  async delete(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: opts.preconditions,
      propagationPolicy: opts.propagationPolicy,
      gracePeriodSeconds: opts.gracePeriodSeconds,
    };
    await this.#json('DELETE', resourcePath(r, namespace, name), json(body), opts.signal);
  }

  /**
   * Streams watch events to onEvent until the server ends the stream (resolves), the signal aborts
   * (resolves) or the connection fails (rejects with a KubeApiError).
   */
  async watch<T extends KubeObject>(
    r: ResourceType,
    opts: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const path =
      resourcePath(r, opts.namespace) +
      query({
        watch: true,
        resourceVersion: opts.resourceVersion,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        timeoutSeconds: opts.timeoutSeconds,
        allowWatchBookmarks: opts.allowWatchBookmarks ?? true,
      });
    await this.#send('GET', path, undefined, signal, (res) => readWatchStream(res, onEvent, signal), true);
  }

  /** Closes pooled connections, ending any watch still open. */
  async close(): Promise<void> {
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    await d?.destroy();
  }

  /**
   * Drops pooled connections so the next request dials afresh. undici speaks HTTP/2 to the API
   * server, multiplexing every request over one connection: when that connection silently dies, a
   * retried request would wait on it again, so callers that detect a stall call this.
   */
  resetConnections(): void {
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    d?.destroy().catch(() => {});
  }

  async #patch<T>(path: string, type: PatchType, body: object, opts: PatchOptions): Promise<T> {
    const q = writeQuery(opts, type === 'apply' ? { force: opts.force } : {});
    return (await this.#json(
      'PATCH',
      path + q,
      { contentType: patchContentTypes[type], data: body },
      opts.signal,
    )) as T;
  }

  async #json(method: string, path: string, body: Body | undefined, signal?: AbortSignal): Promise<unknown> {
    const text = await this.#send(method, path, body, signal, async (res) => await res.text());
    if (text === null) throw signal?.reason ?? new DOMException('aborted', 'AbortError');
    return text ? JSON.parse(text) : undefined;
  }

  /**
   * Sends a request and hands a 2xx response to `read`; throws KubeApiError otherwise. Returns null
   * when `signal` aborted. With `streaming`, the timeout stops once headers arrive: a watch's body
   * lasts minutes.
   */
  async #send<R>(
    method: string,
    path: string,
    body: Body | undefined,
    signal: AbortSignal | undefined,
    read: (res: Response) => Promise<R>,
    streaming = false,
  ): Promise<R | null> {
    if (signal?.aborted) return null;
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new RaylineError('RL_INTERNAL', 'kubeconfig has no current cluster');
    const url = server.replace(/\/+$/, '') + path;
    const ctx = new RequestContext(url, HttpMethod[method as keyof typeof HttpMethod]);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    this.#dispatcher ??= ctx.getDispatcher();
    const headers: Record<string, string> = {
      'user-agent': this.#userAgent,
      ...ctx.getHeaders(),
      accept: 'application/json',
    };
    if (body) headers['content-type'] = body.contentType;
    // One controller for the caller's signal and the timeout; the timeout also tells the two apart,
    // and the listener on the caller's (often long-lived) signal is removed when the request ends.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.#requestTimeoutMs);
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body.data),
        dispatcher: this.#dispatcher,
        signal: ac.signal,
      });
      if (res.status < 200 || res.status >= 300)
        throw responseError(method, path, res.status, await res.text());
      if (streaming) clearTimeout(timer);
      return await read(res);
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      if (signal?.aborted) return null;
      if (timedOut) this.resetConnections();
      const detail = timedOut ? `no answer within ${this.#requestTimeoutMs} ms` : describe(err);
      throw new KubeApiError(method, path, 0, timedOut ? 'Timeout' : 'ConnectionFailed', detail, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

function json(data: unknown): Body {
  return { contentType: 'application/json', data };
}

function writeQuery(opts: WriteOptions, extra: Record<string, boolean | undefined> = {}): string {
  return query({ fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined, ...extra });
}
