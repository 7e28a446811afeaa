/**
 * The caller's router for one deployment: power of two choices over locally estimated queue
 * lengths, a FIFO of calls waiting for capacity bounded by max_queued_requests, and re-routing of
 * calls a full replica rejected. One per deployment per calling process (proxy, handle).
 */
import { BackPressureError, RaylineError } from '../../errors.ts';
import { type Frame, FrameKind, STREAM_WINDOW } from '../transport/frame.ts';
import { PrefixAffinity, type PromptBlocks } from './prefix-affinity.ts';
import type { CallSink, ReplicaClient, ReplicaClientPool } from './replica-client.ts';
import { chooseBySession, sessionOfHttp } from './session-affinity.ts';

export interface ReplicaEndpoint {
  replicaId: string;
  /** Where callers on `nodeId` connect (a unix socket path); `CallRouter` swaps in `tcpAddress` elsewhere. */
  address: string;
  /** The node the replica runs on. */
  nodeId?: string;
  /** Where callers on other nodes connect (`host:port`), when the replica listens on TCP. */
  tcpAddress?: string;
}

export interface DeploymentRoute {
  app: string;
  deployment: string;
  replicas: ReplicaEndpoint[];
  maxOngoingRequests: number;
  maxQueuedRequests: number;
  /** Set when the deployment cannot run any replica: calls fail at once with this reason. */
  unavailable?: string;
  /** The request router (`request_router_config`); absent: power of two choices. */
  router?: RouterPolicy;
}

/** `PrefixCacheAffinityRouter`: see prefix-affinity.ts. */
export interface RouterPolicy {
  kind: 'prefix_cache_affinity';
  imbalancedThreshold: number;
  matchRateThreshold: number;
}

/** What a routed call reports back to whoever made it (a handle response, an HTTP reply). */
export interface ResultSink {
  /** Every frame the replica answers with, except Reject (handled here). */
  onFrame(frame: Frame): void;
  onError(error: RaylineError): void;
}

/** A call as the router sees it: the encoded request and where its results go. */
export class RoutedCall implements CallSink {
  readonly meta: unknown;
  readonly payload: Uint8Array;
  readonly sink: ResultSink;
  router: DeploymentRouter | undefined;
  slot: ReplicaSlot | undefined;
  /** The connection the call went out on: credit and cancel must follow it there. */
  client: ReplicaClient | undefined;
  streamId = 0;
  done = false;
  /** Times this call was sent again because its replica died before starting it. */
  retries = 0;
  /**
   * The request's prompt, set by the caller only when the deployment routes by prefix
   * ({@link DeploymentRouter.routesByPrompt}).
   */
  prompt: string | undefined;
  /** The prompt's block keys, computed once by the router. */
  blocks: PromptBlocks | undefined;
  /** The call's session (session-affinity.ts), read by routers with prefix cache affinity. */
  session: string | undefined;
  /** Streamed chunks consumed since credit was last returned. */
  #consumed = 0;

  constructor(meta: unknown, payload: Uint8Array, sink: ResultSink) {
    this.meta = meta;
    this.payload = payload;
    this.sink = sink;
  }

  onFrame(frame: Frame): void {
    this.router!.onFrame(this, frame);
  }

  onLost(error: RaylineError, started: boolean, connectionLost: boolean): void {
    this.router!.onLost(this, error, started, connectionLost);
  }

  /**
   * The consumer took one streamed chunk. Credit goes back in halves of the window, so a fast
   * consumer costs one small frame per STREAM_WINDOW / 2 chunks and a slow one stalls the replica.
   */
  consumed(chunks = 1): void {
    this.#consumed += chunks;
    if (this.#consumed < STREAM_WINDOW / 2 || !this.slot) return;
    this.router?.credit(this, this.#consumed);
    this.#consumed = 0;
  }

  /** Cancels wherever the call is: waiting in the queue, or running on a replica. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.router?.cancel(this);
  }
}

interface ReplicaSlot {
  endpoint: ReplicaEndpoint;
  replicaId: string;
  /** Estimated requests running on the replica: last reported count plus what we sent since. */
  queueLength: number;
  /** Calls this router has running there. */
  mine: number;
}

const BACKOFF_START_MS = 25;
const BACKOFF_MAX_MS = 500;
/** Sends of one call to replicas that died before starting it, before giving up. */
const MAX_RETRIES = 3;
/** A replica whose connection was lost stays out of this router's choices for this long. */
const LOST_REPLICA_DISTRUST_MS = 10_000;

export class DeploymentRouter {
  readonly app: string;
  readonly deployment: string;
  readonly #pool: ReplicaClientPool;
  #slots: ReplicaSlot[] = [];
  #maxOngoing = 5;
  #maxQueued = -1;
  #unavailable: RaylineError | undefined;
  #lastRoute: DeploymentRoute | undefined;
  #retrustTimer: NodeJS.Timeout | undefined;
  /** Set when the route asks for prefix cache affinity. */
  #affinity: PrefixAffinity | undefined;
  readonly #waiting: RoutedCall[] = [];
  /** Set once the deployment left the routing table: calls that come back here fail with it. */
  #gone: DeploymentGoneError | undefined;
  #backoffMs = BACKOFF_START_MS;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Called when the number of waiting calls changes (for the queued-queries gauge). */
  onQueueChange: ((queued: number) => void) | undefined;
  /** Called for every call submitted (for the request counter). */
  onSubmit: (() => void) | undefined;

  constructor(app: string, deployment: string, pool: ReplicaClientPool) {
    this.app = app;
    this.deployment = deployment;
    this.#pool = pool;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** Whether callers should set {@link RoutedCall.prompt}: only then is a request's body read. */
  get routesByPrompt(): boolean {
    return this.#affinity !== undefined;
  }

  update(route: DeploymentRoute): void {
    this.#maxOngoing = route.maxOngoingRequests;
    this.#maxQueued = route.maxQueuedRequests;
    this.#updatePolicy(route);
    const previous = new Map(this.#slots.map((s) => [s.endpoint.replicaId, s]));
    this.#slots = [];
    this.#lastRoute = route;
    for (const endpoint of route.replicas) {
      if (this.#pool.wasLost(endpoint.address, LOST_REPLICA_DISTRUST_MS)) {
        // Trusted again once the window passes, even if no newer table comes.
        this.#retrustTimer ??= setTimeout(() => {
          this.#retrustTimer = undefined;
          if (this.#lastRoute) this.update(this.#lastRoute);
        }, LOST_REPLICA_DISTRUST_MS).unref();
        continue;
      }
      this.#slots.push(
        previous.get(endpoint.replicaId) ?? {
          endpoint,
          replicaId: endpoint.replicaId,
          queueLength: 0,
          mine: 0,
        },
      );
    }
    this.#unavailable =
      route.unavailable && this.#slots.length === 0
        ? new RaylineError(
            'RL_UNAVAILABLE',
            `deployment '${this.deployment}' of application '${this.app}' has no replica: ${route.unavailable}`,
          )
        : undefined;
    if (this.#unavailable) this.failWaiting(this.#unavailable);
    this.#drain();
  }

  #updatePolicy(route: DeploymentRoute): void {
    const policy = route.router;
    if (policy?.kind !== 'prefix_cache_affinity') {
      this.#affinity = undefined;
      return;
    }
    this.#affinity ??= new PrefixAffinity();
    this.#affinity.imbalancedThreshold = policy.imbalancedThreshold;
    this.#affinity.matchRateThreshold = policy.matchRateThreshold;
    // Replicas that left the table take what they held with them.
    this.#affinity.retain(new Set(route.replicas.map((r) => r.replicaId)));
  }

  submit(call: RoutedCall): void {
    call.router = this;
    this.onSubmit?.();
    if (this.#affinity && call.prompt !== undefined) call.blocks ??= this.#affinity.blocks(call.prompt);
    if (this.#affinity && call.session === undefined) call.session = sessionOfHttp(call.meta, call.payload);
    if (this.#unavailable) {
      call.done = true;
      call.sink.onError(this.#unavailable);
      return;
    }
    if (this.#waiting.length === 0) {
      const slot = this.#choose(call);
      if (slot) {
        this.#dispatch(call, slot);
        return;
      }
    }
    if (this.#maxQueued !== -1 && this.#waiting.length >= this.#maxQueued) {
      call.done = true;
      call.sink.onError(new BackPressureError(`${this.app}/${this.deployment}`, this.#maxQueued));
      return;
    }
    this.#waiting.push(call);
    this.onQueueChange?.(this.#waiting.length);
    this.#armRetry();
  }

  /**
   * Power of two choices among replicas below max_ongoing_requests; with prefix cache affinity,
   * the replica that policy picks when it decides.
   */
  #choose(call: RoutedCall): ReplicaSlot | undefined {
    const slots = this.#slots;
    const n = slots.length;
    const max = this.#maxOngoing;
    if (n === 0) return undefined;
    if (n === 1) return slots[0].queueLength < max ? slots[0] : undefined;
    // A session's replica first (while it is not overloaded), then the longest prefix.
    if (this.#affinity && call.session) {
      const chosen = chooseBySession(call.session, slots, max, this.#affinity.imbalancedThreshold);
      if (chosen) return chosen;
    }
    if (this.#affinity && call.blocks) {
      const chosen = this.#affinity.choose(
        call.blocks,
        slots.filter((s) => s.queueLength < max),
      );
      if (chosen) return chosen;
    }
    const i = Math.floor(Math.random() * n);
    let j = Math.floor(Math.random() * (n - 1));
    if (j >= i) j++;
    const a = slots[i];
    const b = slots[j];
    const best = a.queueLength <= b.queueLength ? a : b;
    if (best.queueLength < max) return best;
    let least: ReplicaSlot | undefined;
    for (const s of slots)
      if (s.queueLength < max && (!least || s.queueLength < least.queueLength)) least = s;
    return least;
  }

  #dispatch(call: RoutedCall, slot: ReplicaSlot): void {
    slot.queueLength++;
    slot.mine++;
    call.slot = slot;
    call.client = this.#pool.get(slot.endpoint.address);
    call.streamId = call.client.call(call, call.meta, call.payload);
    if (this.#affinity && call.blocks) this.#affinity.record(slot.replicaId, call.blocks);
    this.#backoffMs = BACKOFF_START_MS;
  }

  #release(call: RoutedCall, reportedQueueLength: number | undefined): void {
    const slot = call.slot;
    if (!slot) return;
    call.slot = undefined;
    slot.mine--;
    slot.queueLength = reportedQueueLength ?? Math.max(0, slot.queueLength - 1);
    if (this.#waiting.length > 0) this.#drain();
  }

  onFrame(call: RoutedCall, frame: Frame): void {
    const q = (frame.meta as { q?: number } | undefined)?.q;
    if (frame.kind === FrameKind.Reject) {
      const slot = call.slot;
      // Back to the front first: FIFO order is kept for calls that were already next in line.
      if (!call.done) this.#requeue(call);
      this.#release(call, Math.max(q ?? this.#maxOngoing, this.#maxOngoing));
      if (slot) slot.queueLength = Math.max(q ?? this.#maxOngoing, this.#maxOngoing);
      this.#drain();
      return;
    }
    const terminal =
      frame.kind === FrameKind.Reply || frame.kind === FrameKind.End || frame.kind === FrameKind.Error;
    if (terminal) {
      this.#release(call, q);
      call.done = true;
    }
    call.sink.onFrame(frame);
  }

  /**
   * The connection to the call's replica is gone. A call the replica never started goes to another
   * replica, transparently; one that was running fails, saying the replica died.
   */
  onLost(call: RoutedCall, error: RaylineError, started: boolean, connectionLost: boolean): void {
    const slot = call.slot;
    this.#release(call, undefined);
    // Until the controller's next table, route around the replica we know is gone.
    if (slot && connectionLost) this.#slots = this.#slots.filter((s) => s !== slot);
    if (call.done) return;
    if (!connectionLost) {
      call.done = true;
      call.sink.onError(error);
      return;
    }
    if (!started && call.retries < MAX_RETRIES) {
      call.retries++;
      this.#requeue(call);
      this.#drain();
      this.#armRetry();
      return;
    }
    call.done = true;
    call.sink.onError(
      started
        ? new RaylineError('RL_REPLICA_DIED', `the replica running this request died: ${error.message}`)
        : error,
    );
  }

  credit(call: RoutedCall, n: number): void {
    if (call.slot) call.client?.credit(call.streamId, n);
  }

  cancel(call: RoutedCall): void {
    const index = this.#waiting.indexOf(call);
    if (index !== -1) {
      this.#waiting.splice(index, 1);
      this.onQueueChange?.(this.#waiting.length);
      return;
    }
    if (call.slot) {
      call.client?.cancel(call.streamId);
      this.#release(call, undefined);
    }
  }

  #drain(): void {
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0];
      if (next.done) {
        this.#waiting.shift();
        if (this.#waiting.length === 0) this.onQueueChange?.(0);
        continue;
      }
      const slot = this.#choose(next);
      if (!slot) break;
      this.#waiting.shift();
      this.#dispatch(next, slot);
      if (this.#waiting.length === 0) this.onQueueChange?.(0);
    }
    if (this.#waiting.length > 0) {
      this.onQueueChange?.(this.#waiting.length);
      this.#armRetry();
    }
  }

  /**
   * Estimates can go stale when other callers' requests finish on a replica, and a call waiting only
   * on stale estimates would wait forever. Back off (25 ms doubling to 500 ms), then probe: forget the
   * estimates of replicas we have nothing running on and try again; a full replica answers Reject.
   */
  #armRetry(): void {
    if (this.#retryTimer || this.#waiting.length === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      for (const slot of this.#slots) if (slot.mine === 0) slot.queueLength = 0;
      this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
      this.#drain();
    }, this.#backoffMs);
    this.#retryTimer.unref();
  }

  /**
   * A call that never started goes back to the front of the queue, unless the deployment is gone:
   * then no table will ever bring it a replica, and it fails (the proxy routes it afresh).
   */
  #requeue(call: RoutedCall): void {
    if (this.#gone) {
      call.done = true;
      call.sink.onError(this.#gone);
      return;
    }
    this.#waiting.unshift(call);
    this.onQueueChange?.(this.#waiting.length);
  }

  /** The deployment left the routing table: waiting calls fail, and so do calls that come back. */
  close(): void {
    this.#gone = new DeploymentGoneError(this.app, this.deployment);
    this.failWaiting(this.#gone);
  }

  /** Fails every waiting call, e.g. when the deployment is deleted. */
  failWaiting(error: RaylineError): void {
    const waiting = this.#waiting.splice(0);
    for (const call of waiting) {
      call.done = true;
      call.sink.onError(error);
    }
    this.onQueueChange?.(0);
  }
}

/** A call's deployment left the routing table before the call started. */
export class DeploymentGoneError extends RaylineError {
  constructor(app: string, deployment: string) {
    super('RL_NOT_FOUND', `deployment '${deployment}' of application '${app}' no longer exists`);
  }
}
