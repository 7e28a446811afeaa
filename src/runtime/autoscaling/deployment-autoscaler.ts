/**
 * The autoscaling state of one deployment: load samples over the look-back window, the policy's
 * decision counter, and the current target. The controller feeds it every control-loop tick.
 */
import type { AutoscalingConfig } from '../../schema/deployment-config.ts';
import { decide, type PolicyState } from './policy.ts';

export interface AutoscaleResult {
  target: number;
  desired: number;
  /** The target changed in this tick. */
  changed: boolean;
}

export class DeploymentAutoscaler {
  #config: AutoscalingConfig;
  #state: PolicyState = { decisionCounter: 0 };
  #samples: { atMs: number; total: number }[] = [];
  target: number;
  desired: number;

  constructor(config: AutoscalingConfig) {
    this.#config = config;
    this.target = config.initial_replicas ?? config.min_replicas;
    this.desired = this.target;
  }

  /** New bounds or policy apply at once; the current target is kept within them. */
  reconfigure(config: AutoscalingConfig): void {
    this.#config = config;
    this.target = Math.min(config.max_replicas, Math.max(config.min_replicas, this.target));
  }

  /** After a head restart: the replicas found running, within bounds, become the target. */
  resume(running: number): void {
    const { min_replicas, max_replicas } = this.#config;
    this.target = Math.min(max_replicas, Math.max(min_replicas, running, this.target));
    this.desired = this.target;
  }

  /** Requests running plus queued, averaged over look_back_period_s. */
  #average(nowMs: number): number {
    const from = nowMs - this.#config.look_back_period_s * 1000;
    while (this.#samples.length > 0 && this.#samples[0].atMs < from) this.#samples.shift();
    if (this.#samples.length === 0) return 0;
    let sum = 0;
    for (const s of this.#samples) sum += s.total;
    return sum / this.#samples.length;
  }

  tick(nowMs: number, totalRequests: number, runningReplicas: number): AutoscaleResult {
    this.#samples.push({ atMs: nowMs, total: totalRequests });
    // A request waiting with nothing running is acted on now, not after it enters the average.
    const load = runningReplicas === 0 ? totalRequests : this.#average(nowMs);
    const decision = decide({
      config: this.#config,
      currentTarget: this.target,
      runningReplicas,
      totalRequests: load,
      state: this.#state,
    });
    this.#state = decision.state;
    const changed = decision.target !== this.target;
    this.target = decision.target;
    this.desired = decision.desired;
    return { target: this.target, desired: this.desired, changed };
  }
}
