/**
 * Ray Serve's default replica autoscaling policy, as a pure function: the caller passes the state
 * it got back last time. Called every CONTROL_LOOP_INTERVAL_S by the controller.
 *
 * desired = running replicas x smoothed(total requests per replica / target_ongoing_requests), with
 * the smoothing factor for the direction (upscaling_factor / downscaling_factor, each falling back to
 * smoothing_factor), within [min, max]; when smoothing alone holds back a shrink the unsmoothed ratio
 * calls for, shrink by one. A decision takes effect once it has been the same for longer than the
 * direction's delay; a decision the other way resets the count. Going below one replica happens only
 * from one, after downscale_to_zero_delay_s (or downscale_delay_s).
 */
import type { AutoscalingConfig } from '../../schema/deployment-config.ts';

export const CONTROL_LOOP_INTERVAL_S = 0.1;

export interface PolicyState {
  /** Consecutive decisions: positive to scale up, negative to scale down. */
  decisionCounter: number;
}

export interface PolicyInput {
  config: AutoscalingConfig;
  /** The target the controller is working towards now. */
  currentTarget: number;
  /** Replicas running now. */
  runningReplicas: number;
  /** Requests running in replicas plus those queued at callers, averaged over look_back_period_s. */
  totalRequests: number;
  state: PolicyState;
}

export interface PolicyDecision {
  /** The new target number of replicas. */
  target: number;
  /** What the policy would want now, before the delays. */
  desired: number;
  state: PolicyState;
}

const clamp = (n: number, min: number, max: number) => Math.min(max, Math.max(min, n));

/** The replica count the load calls for, before delays; `runningReplicas` must be above zero. */
export function desiredReplicas(
  config: AutoscalingConfig,
  totalRequests: number,
  runningReplicas: number,
): number {
  const perReplica = totalRequests / runningReplicas;
  const errorRatio = perReplica / config.target_ongoing_requests;
  const factor =
    errorRatio >= 1
      ? (config.upscaling_factor ?? config.smoothing_factor)
      : (config.downscaling_factor ?? config.smoothing_factor);
  const smoothedRatio = 1 + (errorRatio - 1) * factor;
  let desired = Math.ceil(runningReplicas * smoothedRatio);
  // Smoothing must not stall a shrink the load calls for (Ray's rule).
  if (Math.ceil(runningReplicas * errorRatio) < runningReplicas && desired === runningReplicas) desired -= 1;
  return clamp(desired, config.min_replicas, config.max_replicas);
}

export function decide(input: PolicyInput): PolicyDecision {
  const { config, currentTarget, runningReplicas, totalRequests } = input;
  let counter = input.state.decisionCounter;

  // Nothing running (scaled to zero, or all still starting): the per-replica ratio is undefined.
  // A waiting request scales up at once, with no delay.
  if (runningReplicas === 0) {
    const fromZero = Math.max(1, Math.ceil(config.upscaling_factor ?? config.smoothing_factor));
    const target = clamp(
      totalRequests > 0 ? Math.max(currentTarget, fromZero) : currentTarget,
      config.min_replicas,
      config.max_replicas,
    );
    return { target, desired: target, state: { decisionCounter: counter } };
  }

  let desired = desiredReplicas(config, totalRequests, runningReplicas);
  // Zero is reached only from one replica, so that downscale_to_zero_delay_s applies to the last one.
  if (currentTarget > 1) desired = Math.max(desired, 1);
  let target = currentTarget;
  if (desired > currentTarget) {
    counter = Math.max(counter, 0) + 1;
    if (counter > Math.floor(config.upscale_delay_s / CONTROL_LOOP_INTERVAL_S + 1e-9)) {
      counter = 0;
      target = desired;
    }
  } else if (desired < currentTarget) {
    counter = Math.min(counter, 0) - 1;
    const toZero = currentTarget === 1 && desired === 0 && config.downscale_to_zero_delay_s != null;
    const delayS = toZero ? config.downscale_to_zero_delay_s! : config.downscale_delay_s;
    if (-counter > Math.floor(delayS / CONTROL_LOOP_INTERVAL_S + 1e-9)) {
      counter = 0;
      target = desired;
    }
  } else {
    counter = 0;
  }
  return {
    target: clamp(target, config.min_replicas, config.max_replicas),
    desired,
    state: { decisionCounter: counter },
  };
}
