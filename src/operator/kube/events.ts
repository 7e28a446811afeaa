/**
 * EventRecorder: Kubernetes Events (core/v1) for notable transitions, so `kubectl describe` tells a
 * user what the operator did and why. Identical events on one object within ten minutes raise the
 * first event's count instead of piling up new ones. Recording is best effort: a failure is logged,
 * never thrown, because no reconcile should fail for want of an Event.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isNotFound } from './api-error.ts';
import type { KubeClient } from './client.ts';
import { type Clock, realClock } from './clock.ts';
import { Events, type KubeObject } from './resources.ts';

export type EventType = 'Normal' | 'Warning';

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface CoreEvent extends KubeObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  type: EventType;
  source: { component: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  reportingComponent: string;
  reportingInstance: string;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
  lastSeenAt: number;
}

/** Remembers recent events by identity, deciding whether one repeats within the window. Pure state. */
export class EventAggregator {
  readonly #recent = new Map<string, Recorded>();
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;

  constructor(options: { windowMs?: number; maxEntries?: number; clock?: Clock } = {}) {
    this.#windowMs = options.windowMs ?? 10 * 60_000;
    this.#maxEntries = options.maxEntries ?? 4096;
    this.#clock = options.clock ?? realClock;
  }

  /** Same object, type, reason and message: the same event. */
  static keyOf(ref: ObjectReference, type: EventType, reason: string, message: string): string {
    const id = ref.uid || `${ref.namespace}/${ref.kind}/${ref.name}`;
    return `${id}\u0000${type}\u0000${reason}\u0000${message}`;
  }

  /** The earlier event this one repeats, or undefined when it must be created anew. */
  repeats(key: string): Readonly<Recorded> | undefined {
    const r = this.#recent.get(key);
    if (r && this.#clock.now() - r.lastSeenAt < this.#windowMs) return r;
    this.#recent.delete(key);
    return undefined;
  }

  /** Notes that key was written to the server with this count. */
  recorded(key: string, name: string, namespace: string, count: number): void {
    this.#recent.delete(key); // re-insert: Map order becomes least recently seen first
    this.#recent.set(key, { name, namespace, count, lastSeenAt: this.#clock.now() });
    while (this.#recent.size > this.#maxEntries)
      this.#recent.delete(this.#recent.keys().next().value as string);
  }

  forget(key: string): void {
    this.#recent.delete(key);
  }

  size(): number {
    return this.#recent.size;
  }
}

export interface EventRecorderOptions {
  client: Pick<KubeClient, 'create' | 'patch'>;
  component?: string;
  /** reportingInstance: which operator replica wrote the event. */
  instance?: string;
  logger?: Logger;
  clock?: Clock;
  /** Wall-clock time for the timestamps written. */
  wallClock?: () => Date;
  windowMs?: number;
  /** Writes waiting beyond this are dropped (an API server that is down must not grow memory). */
  maxPending?: number;
}

export class EventRecorder {
  readonly #client: Pick<KubeClient, 'create' | 'patch'>;
  readonly #component: string;
  readonly #instance: string;
  readonly #logger: Logger | undefined;
  readonly #wallClock: () => Date;
  readonly #aggregator: EventAggregator;
  readonly #maxPending: number;
  // Writes run one at a time, in order: a repeat must see the create of its first occurrence.
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;

  constructor(options: EventRecorderOptions) {
    this.#client = options.client;
    this.#component = options.component ?? 'rayline-operator';
    this.#instance = options.instance ?? this.#component;
    this.#logger = options.logger;
    this.#wallClock = options.wallClock ?? (() => new Date());
    this.#aggregator = new EventAggregator({ windowMs: options.windowMs, clock: options.clock });
    this.#maxPending = options.maxPending ?? 1000;
  }

  /** Records an event on obj in the background. */
  event(obj: KubeObject, type: EventType, reason: string, message: string): void {
    if (this.#pending >= this.#maxPending) {
      this.#logger?.warn({ reason, object: refName(obj) }, 'event dropped: too many event writes pending');
      return;
    }
    this.#pending++;
    this.#chain = this.#chain
      .then(() => this.#write(obj, type, reason, message.slice(0, 1024)))
      .finally(() => {
        this.#pending--;
      });
  }

  /** Resolves once every event recorded so far was written (or failed). */
  flush(): Promise<void> {
    return this.#chain;
  }

  async #write(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const ref = referenceTo(obj);
    const key = EventAggregator.keyOf(ref, type, reason, message);
    const now = this.#wallClock().toISOString();
    try {
      const earlier = this.#aggregator.repeats(key);
      if (earlier) {
        try {
          const count = earlier.count + 1;
          await this.#client.patch(Events, earlier.namespace, earlier.name, 'merge', {
            count,
            lastTimestamp: now,
          });
          this.#aggregator.recorded(key, earlier.name, earlier.namespace, count);
          return;
        } catch (err) {
          // The API server expires events after an hour: then start a fresh one.
          if (!isNotFound(err)) throw err;
          this.#aggregator.forget(key);
        }
      }
      const namespace = ref.namespace || 'default';
      const name = `${(ref.name ?? 'object').slice(0, 200)}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
      const event: CoreEvent = {
        metadata: { name, namespace },
        involvedObject: ref,
        reason,
        message,
        type,
        source: { component: this.#component },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        reportingComponent: this.#component,
        reportingInstance: this.#instance,
      };
      await this.#client.create(Events, event);
      this.#aggregator.recorded(key, name, namespace, 1);
    } catch (err) {
      this.#logger?.warn({ err, reason, object: refName(obj) }, 'could not record event');
    }
  }
}

function referenceTo(obj: KubeObject): ObjectReference {
  const m = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
  };
}

function refName(obj: KubeObject): string {
  return `${obj.kind ?? 'object'} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
