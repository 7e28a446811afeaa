/**
 * Expectations: what a controller has asked the API server to create or delete and has not yet seen
 * come back through its informer. The informer cache lags the server, so a reconcile that counted
 * pods from the cache right after creating one would create it again; while a key's expectations
 * are unmet, its reconcile must not create or delete more. A TTL bounds the wait, in case an event
 * was lost (the informer's relist repairs the cache; the next reconcile then counts right).
 *
 * Names are recorded, not counts, so that a stray event for an unrelated pod cannot satisfy an
 * expectation. With generateName the name is known only once create returns, and the informer may
 * deliver the pod before that: such early observations are remembered for the TTL and matched when
 * the expectation is recorded.
 */
import { type Clock, realClock } from './clock.ts';

interface Pending {
  creations: Set<string>;
  /** name → uid ('' when any uid matches). */
  deletions: Map<string, string>;
  /** When the last expectation was recorded: the TTL runs from here. */
  setAt: number;
  /** Creations observed before they were expected, with when they were seen. */
  early: Map<string, number>;
}

export interface ExpectationsOptions {
  ttlMs?: number;
  clock?: Clock;
}

export class Expectations {
  readonly #byKey = new Map<string, Pending>();
  readonly #ttlMs: number;
  readonly #clock: Clock;

  constructor(options: ExpectationsOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 5 * 60_000;
    this.#clock = options.clock ?? realClock;
  }

  /** Records creations about to be made (or just made, for generateName). */
  expectCreations(key: string, names: readonly string[]): void {
    const p = this.#entry(key);
    p.setAt = this.#clock.now();
    this.#pruneEarly(p);
    for (const name of names) {
      if (p.early.delete(name)) continue;
      p.creations.add(name);
    }
    this.#dropIfEmpty(key, p);
  }

  /** Records deletions about to be made; call before the delete request, whose event may come first. */
  expectDeletions(key: string, objects: readonly { name: string; uid?: string }[]): void {
    const p = this.#entry(key);
    p.setAt = this.#clock.now();
    for (const o of objects) p.deletions.set(o.name, o.uid ?? '');
    this.#dropIfEmpty(key, p);
  }

  /** The informer saw an object of this key appear. */
  creationObserved(key: string, name: string): void {
    const p = this.#entry(key);
    if (!p.creations.delete(name)) {
      this.#pruneEarly(p);
      p.early.set(name, this.#clock.now());
    }
    this.#dropIfEmpty(key, p);
  }

  /** The informer saw an object of this key disappear. A uid that differs is another object. */
  deletionObserved(key: string, name: string, uid?: string): void {
    const p = this.#byKey.get(key);
    if (!p) return;
    // A name reused after this deletion is a new object: an early sighting of the old one must not count.
    p.early.delete(name);
    const expected = p.deletions.get(name);
    if (expected !== undefined && (expected === '' || !uid || expected === uid)) p.deletions.delete(name);
    this.#dropIfEmpty(key, p);
  }

  /** A create request failed: that object will never appear. */
  creationFailed(key: string, name: string): void {
    const p = this.#byKey.get(key);
    if (!p) return;
    p.creations.delete(name);
    this.#dropIfEmpty(key, p);
  }

  /** A delete request failed (or found nothing): no deletion event will come. */
  deletionFailed(key: string, name: string): void {
    const p = this.#byKey.get(key);
    if (!p) return;
    p.deletions.delete(name);
    this.#dropIfEmpty(key, p);
  }

  /** True when every expectation of key was observed, or the last was recorded longer than the TTL ago. */
  satisfied(key: string): boolean {
    const p = this.#byKey.get(key);
    if (!p) return true;
    if (p.creations.size === 0 && p.deletions.size === 0) return true;
    if (this.#clock.now() - p.setAt >= this.#ttlMs) {
      // Give up on the missing events: forget them so that they cannot block the next round.
      p.creations.clear();
      p.deletions.clear();
      this.#dropIfEmpty(key, p);
      return true;
    }
    return false;
  }

  /** What key still waits for, for logs and status messages. */
  pending(key: string): { creations: string[]; deletions: string[] } {
    const p = this.#byKey.get(key);
    return { creations: [...(p?.creations ?? [])], deletions: [...(p?.deletions.keys() ?? [])] };
  }

  /** Forgets key entirely (its owner was deleted). */
  delete(key: string): void {
    this.#byKey.delete(key);
  }

  #entry(key: string): Pending {
    let p = this.#byKey.get(key);
    if (!p) {
      p = { creations: new Set(), deletions: new Map(), setAt: this.#clock.now(), early: new Map() };
      this.#byKey.set(key, p);
    }
    return p;
  }

  #pruneEarly(p: Pending): void {
    const cutoff = this.#clock.now() - this.#ttlMs;
    for (const [name, at] of p.early) if (at <= cutoff) p.early.delete(name);
  }

  #dropIfEmpty(key: string, p: Pending): void {
    if (p.creations.size === 0 && p.deletions.size === 0 && p.early.size === 0) this.#byKey.delete(key);
  }
}
