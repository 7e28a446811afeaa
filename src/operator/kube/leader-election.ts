/**
 * Leader election on a coordination.k8s.io/v1 Lease, so that of several operator replicas exactly
 * one reconciles. The holder renews every retryPeriod; writes carry the resourceVersion read, so of
 * two candidates racing for a free lease one gets a 409 and stays a follower. A leader that cannot
 * renew within renewDeadline gives up at once (its signal aborts) — before the lease, written with
 * the longer leaseDuration, can expire and let another replica in. Stopping gracefully releases the
 * lease so that a successor need not wait for it to expire.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { isAlreadyExists, isConflict } from './api-error.ts';
import type { KubeClient } from './client.ts';
import { sleep } from './clock.ts';
import { type KubeObject, Leases } from './resources.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: Pick<KubeClient, 'get' | 'create' | 'replace'> & Partial<Pick<KubeClient, 'resetConnections'>>;
  namespace: string;
  name: string;
  /** Default: hostname plus a random suffix, so two processes on one host differ. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Runs once leadership is acquired; signal aborts the moment it is lost or given up. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once, right when leadership ends (lost or stopped). */
  onStoppedLeading?: () => void;
  /** Called whenever the observed holder changes (including to this elector). */
  onNewLeader?: (identity: string) => void;
  /** Clear the holder when run()'s signal aborts (default true). false: leave the lease to expire. */
  releaseOnStop?: boolean;
  logger?: Logger;
}

type Attempt = 'acquired' | 'held-by-other' | 'failed';

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/(\.\d{3})Z$/, '$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  readonly #o: LeaderElectorOptions;
  readonly #leaseMs: number;
  readonly #deadlineMs: number;
  readonly #retryMs: number;
  readonly #log: Logger | undefined;
  #leading = false;
  #observedHolder = '';

  constructor(options: LeaderElectorOptions) {
    this.#o = options;
    this.identity = options.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
    this.#leaseMs = options.leaseDurationMs ?? 15_000;
    this.#deadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#leaseMs > this.#deadlineMs && this.#deadlineMs > this.#retryMs)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
    this.#log = options.logger?.child({
      lease: `${options.namespace}/${options.name}`,
      identity: this.identity,
    });
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** The holder last seen on the lease ('' when free). */
  observedLeader(): string {
    return this.#observedHolder;
  }

  /**
   * Campaigns until this elector leads, then leads until leadership is lost or `signal` aborts.
   * Resolves after one term (or none, if stopped first); call again to campaign anew.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if ((await this.#attempt(signal, false, this.#deadlineMs)) === 'acquired') break;
      await sleep(this.#retryMs * (1 + Math.random() * 0.2), signal);
    }
    if (signal.aborted) return;
    await this.#lead(signal);
  }

  async #lead(stop: AbortSignal): Promise<void> {
    const lead = new AbortController();
    // The lease counts from when the winning write was sent, not from when its answer came.
    let renewedAt = this.#acquiredAt;
    let deadline: NodeJS.Timeout | undefined;
    const lose = (why: string) => {
      if (!this.#leading) return;
      this.#leading = false;
      clearTimeout(deadline);
      if (why === 'stopping') this.#log?.info('stopped leading');
      else this.#log?.warn({ why }, 'leadership lost');
      lead.abort(new Error(`leadership of lease ${this.#o.namespace}/${this.#o.name} ended: ${why}`));
      try {
        this.#o.onStoppedLeading?.();
      } catch (err) {
        this.#log?.error({ err }, 'onStoppedLeading threw');
      }
    };
    const armDeadline = () => {
      clearTimeout(deadline);
      const left = renewedAt + this.#deadlineMs - performance.now();
      deadline = setTimeout(() => lose(`no renewal within ${this.#deadlineMs} ms`), left);
    };
    this.#leading = true;
    this.#log?.info('started leading');
    armDeadline();
    const work = Promise.resolve()
      .then(() => this.#o.onStartedLeading(lead.signal))
      .catch((err) => this.#log?.error({ err }, 'onStartedLeading threw'));
    while (this.#leading && !stop.aborted) {
      await sleep(this.#retryMs, stop, lead.signal);
      if (!this.#leading || stop.aborted) break;
      const result = await this.#attempt(lead.signal, true, renewedAt + this.#deadlineMs - performance.now());
      if (result === 'acquired' && this.#leading) {
        renewedAt = this.#acquiredAt;
        armDeadline();
      } else if (result === 'held-by-other') {
        lose(`lease taken by ${this.#observedHolder}`);
      }
    }
    if (!this.#leading) return;
    // Graceful stop: stop reconciling first, let the work wind down, then hand the lease over.
    lose('stopping');
    await Promise.race([work, new Promise((r) => setTimeout(r, this.#deadlineMs).unref())]);
    if (this.#o.releaseOnStop ?? true) await this.#release();
  }

  /** When the last successful attempt started (performance.now()). */
  #acquiredAt = 0;

  async #attempt(signal: AbortSignal, renewing: boolean, budgetMs: number): Promise<Attempt> {
    const started = performance.now();
    const req = new AbortController();
    const abort = () => req.abort();
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    // An attempt that hangs must not outlive the renew deadline; its connection is likely dead, and
    // over HTTP/2 the next attempt would wait on it again.
    let overBudget = false;
    const timer = setTimeout(
      () => {
        overBudget = true;
        abort();
        this.#o.client.resetConnections?.();
      },
      Math.max(1, budgetMs),
    );
    try {
      const result = await this.#tryAcquireOrRenew(req.signal, renewing);
      if (result === 'acquired') this.#acquiredAt = started;
      return result;
    } catch (err) {
      if (!req.signal.aborted || overBudget) this.#log?.info({ err, renewing }, 'lease update failed');
      return 'failed';
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal, renewing: boolean): Promise<Attempt> {
    const { client, namespace, name } = this.#o;
    const nowMs = Date.now();
    const durationS = Math.ceil(this.#leaseMs / 1000);
    const lease = await client.get<Lease>(Leases, namespace, name, { signal });
    if (!lease) {
      if (renewing) return 'held-by-other';
      const spec: LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: durationS,
        acquireTime: microTime(nowMs),
        renewTime: microTime(nowMs),
        leaseTransitions: 0,
      };
      try {
        await client.create<Lease>(Leases, { metadata: { name, namespace }, spec }, { signal });
      } catch (err) {
        if (isAlreadyExists(err)) return 'failed';
        throw err;
      }
      this.#observe(this.identity);
      return 'acquired';
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.#observe(holder);
    if (holder !== this.identity) {
      // While leading, anyone else on the lease means it was taken: never take it back silently.
      if (renewing) return 'held-by-other';
      const renewMs = Date.parse(spec.renewTime ?? '') || 0;
      // Expiry compares the holder's renewTime with this machine's clock: clocks are assumed in sync
      // to well under a lease duration, as on any cluster that runs NTP.
      const expired = renewMs + (spec.leaseDurationSeconds ?? durationS) * 1000 < nowMs;
      if (holder && !expired) return 'held-by-other';
    }
    const takeover = holder !== this.identity;
    const next: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationS,
        renewTime: microTime(nowMs),
        acquireTime: takeover || !spec.acquireTime ? microTime(nowMs) : spec.acquireTime,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
      },
    };
    try {
      await client.replace<Lease>(Leases, next, { signal });
    } catch (err) {
      // Someone wrote the lease since we read it: they won this round.
      if (isConflict(err)) return 'failed';
      throw err;
    }
    this.#observe(this.identity);
    return 'acquired';
  }

  async #release(): Promise<void> {
    const { client, namespace, name } = this.#o;
    const signal = AbortSignal.timeout(this.#deadlineMs);
    try {
      const lease = await client.get<Lease>(Leases, namespace, name, { signal });
      if (!lease || lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(Date.now());
      // A 1 s duration and no holder: candidates take it at their next try.
      const spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: now,
        acquireTime: now,
      };
      await client.replace<Lease>(Leases, { ...lease, spec }, { signal });
      this.#observe('');
      this.#log?.info('released lease');
    } catch (err) {
      this.#log?.warn({ err }, 'could not release lease; it will expire');
    }
  }

  #observe(holder: string): void {
    if (holder === this.#observedHolder) return;
    this.#observedHolder = holder;
    if (holder) this.#o.onNewLeader?.(holder);
  }
}
