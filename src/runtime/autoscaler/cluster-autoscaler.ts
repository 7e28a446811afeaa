/**
 * The cluster autoscaler loop on the head: every interval it reads the provider's groups and
 * workers and the head's node load and unplaced demand, asks the planner for a decision and hands
 * it to the provider. The policy is all in planScaling; this is only the loop around it.
 */
import type { Logger } from '../../observability/logger.ts';
import { planScaling, type ScalePlan } from './planner.ts';
import type { NodeLoad, NodeProvider, ResourceDemand, ScaleDecision } from './types.ts';

/** What the head's cluster state offers the autoscaler, read once per round. */
export interface ClusterView {
  /** Registered nodes, the head included; a worker's id is its provider worker id. */
  nodes(): readonly NodeLoad[];
  /** Replicas and placement groups that could not be placed on the cluster as it is. */
  demand(): readonly ResourceDemand[];
}

export interface ClusterAutoscalerOptions {
  provider: NodeProvider;
  view: ClusterView;
  /** Time between the end of one round and the start of the next; default 1000 ms (Ray: 5 s). */
  intervalMs?: number;
  log?: Logger;
  /** Called with every round's plan, before it is applied (status, metrics, tests). */
  onPlan?: (plan: ScalePlan) => void;
}

export class ClusterAutoscaler {
  readonly #provider: NodeProvider;
  readonly #view: ClusterView;
  readonly #intervalMs: number;
  readonly #log: Logger | undefined;
  readonly #onPlan: ((plan: ScalePlan) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ScalePlan | undefined> | undefined;
  #started = false;
  /** Bumped by start() and stop(), so a timer of a stopped loop never schedules another round. */
  #generation = 0;
  /** The last decision the provider accepted, as a comparable key. */
  #applied: string | undefined;
  /** Reasons of unsatisfiable demand already logged, so each is logged once while it lasts. */
  #reported = new Set<string>();
  /** The last round's error message, so a failure that repeats every round is logged once. */
  #lastError: string | undefined;

  constructor(options: ClusterAutoscalerOptions) {
    this.#provider = options.provider;
    this.#view = options.view;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#log = options.log?.child({ component: 'cluster-autoscaler' });
    this.#onPlan = options.onPlan;
  }

  /** Starts the loop with a round now. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule(0, ++this.#generation);
  }

  /** Ends the loop, waiting for a round in progress. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#generation++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * One round. Rounds never overlap: called while one runs, it waits for that one instead. Never
   * rejects: an error is logged and the round's result is undefined.
   */
  tick(): Promise<ScalePlan | undefined> {
    if (!this.#running) {
      this.#running = this.#round().finally(() => {
        this.#running = undefined;
      });
    }
    return this.#running;
  }

  #schedule(delayMs: number, generation: number): void {
    this.#timer = setTimeout(async () => {
      await this.tick();
      if (generation === this.#generation) this.#schedule(this.#intervalMs, generation);
    }, delayMs);
    // The head's servers keep the process alive; the autoscaler alone should not.
    this.#timer.unref();
  }

  async #round(): Promise<ScalePlan | undefined> {
    try {
      const shape = await this.#provider.shape();
      const workers = await this.#provider.workers();
      const nodes = this.#view.nodes();
      const registered = new Set(nodes.map((n) => n.id));
      const plan = planScaling({
        shape,
        nodes,
        pendingWorkers: workers.filter((w) => !registered.has(w.id)),
        demand: this.#view.demand(),
      });
      this.#report(plan);
      this.#onPlan?.(plan);
      const decision: ScaleDecision = { groups: plan.groups };
      const key = JSON.stringify(decision);
      // A decision carries removals by id: repeating one is harmless and covers a lost apply.
      if (key !== this.#applied || plan.groups.some((g) => g.remove.length > 0)) {
        await this.#provider.apply(decision);
        this.#applied = key;
        this.#log?.info({ decision: plan.groups }, 'applied scaling decision');
      }
      await this.#provider.reconcile?.();
      if (this.#lastError !== undefined) this.#log?.info('cluster autoscaler recovered');
      this.#lastError = undefined;
      return plan;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== this.#lastError) this.#log?.error({ err: error }, 'cluster autoscaler round failed');
      else this.#log?.debug({ err: error }, 'cluster autoscaler round failed again');
      this.#lastError = message;
      return undefined;
    }
  }

  /** Logs each unsatisfiable reason when it appears, and forgets it once it is gone. */
  #report(plan: ScalePlan): void {
    const now = new Set<string>();
    for (const { demand, reason } of plan.unsatisfiable) {
      if (!this.#reported.has(reason) && !now.has(reason))
        this.#log?.warn({ demand }, `demand cannot be satisfied: ${reason}`);
      now.add(reason);
    }
    this.#reported = now;
  }
}
