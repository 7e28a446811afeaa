import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AutoscalingConfig, autoscalingConfigSchema } from '../../schema/deployment-config.ts';
import { decide, desiredReplicas, type PolicyState } from './policy.ts';

const config = (overrides: Record<string, unknown> = {}): AutoscalingConfig =>
  autoscalingConfigSchema.parse({
    min_replicas: 1,
    max_replicas: 10,
    upscale_delay_s: 0,
    downscale_delay_s: 0,
    ...overrides,
  });
const fresh: PolicyState = { decisionCounter: 0 };

/** Runs the policy for `ticks` loop iterations with steady load; returns each tick's target. */
function run(c: AutoscalingConfig, start: number, running: number, total: number, ticks: number): number[] {
  let state = fresh;
  let target = start;
  const out: number[] = [];
  for (let i = 0; i < ticks; i++) {
    const d = decide({
      config: c,
      currentTarget: target,
      runningReplicas: running,
      totalRequests: total,
      state,
    });
    state = d.state;
    target = d.target;
    out.push(target);
  }
  return out;
}

describe('desired replicas (before delays)', () => {
  test('up: 2 replicas, 12 requests, target 2 -> 6 per 2 = ratio 3 -> 6 replicas', () => {
    assert.equal(desiredReplicas(config({ target_ongoing_requests: 2 }), 12, 2), 6);
  });

  test('down: 4 replicas, 2 requests, target 2 -> ratio 0.25 -> 1 replica', () => {
    assert.equal(desiredReplicas(config({ target_ongoing_requests: 2 }), 2, 4), 1);
  });

  test('steady: 3 replicas, 6 requests, target 2 -> ratio 1 -> 3 replicas', () => {
    assert.equal(desiredReplicas(config({ target_ongoing_requests: 2 }), 6, 3), 3);
  });

  test('upscaling_factor 0.5: 2 replicas at ratio 3 -> ceil(2 x (1 + 2 x 0.5)) = 4', () => {
    assert.equal(desiredReplicas(config({ upscaling_factor: 0.5 }), 12, 2), 4);
  });

  test('smoothing_factor 0.5 is the fallback for both directions: 4 replicas at ratio 0.25 -> ceil(4 x 0.625) = 3', () => {
    assert.equal(desiredReplicas(config({ smoothing_factor: 0.5 }), 2, 4), 3);
  });

  test('downscaling_factor beats smoothing_factor: 4 at ratio 0.25, factor 1 (smoothing 0.1) -> 1', () => {
    assert.equal(desiredReplicas(config({ smoothing_factor: 0.1, downscaling_factor: 1 }), 2, 4), 1);
  });

  test('smoothing does not stall a shrink: 10 replicas at ratio 0.85, factor 0.5 -> ceil(9.25) = 10, unsmoothed 9 < 10, so 9', () => {
    assert.equal(desiredReplicas(config({ downscaling_factor: 0.5 }), 17, 10), 9);
  });

  test('no shrink when the unsmoothed count does not shrink: 4 replicas, 7.9 requests (ratio 0.9875) -> ceil(3.95) = 4', () => {
    assert.equal(desiredReplicas(config(), 7.9, 4), 4);
    // ... and 3 replicas at the same load want 4: the count does not flap between 3 and 4.
    assert.equal(desiredReplicas(config(), 7.9, 3), 4);
  });

  test('bounds: 2 replicas, 100 requests -> 50 wanted, max 10; 5 replicas, 0 requests -> 0 wanted, min 1', () => {
    assert.equal(desiredReplicas(config(), 100, 2), 10);
    assert.equal(desiredReplicas(config(), 0, 5), 1);
  });

  test('min_replicas 0 allows zero: 2 replicas, 0 requests -> 0', () => {
    assert.equal(desiredReplicas(config({ min_replicas: 0 }), 0, 2), 0);
  });
});

describe('delays and the decision counter (0.1 s loop)', () => {
  test('upscale_delay_s 0.5: target moves on the 6th consecutive up decision', () => {
    const targets = run(config({ upscale_delay_s: 0.5 }), 2, 2, 12, 7);
    assert.deepEqual(targets, [2, 2, 2, 2, 2, 6, 6]);
  });

  test('downscale_delay_s 1: target moves on the 11th consecutive down decision', () => {
    const targets = run(config({ downscale_delay_s: 1 }), 4, 4, 2, 12);
    assert.deepEqual(targets, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 1, 1]);
  });

  test('a decision the other way resets the count', () => {
    const c = config({ upscale_delay_s: 0.3, downscale_delay_s: 10 });
    let state = fresh;
    for (let i = 0; i < 3; i++)
      state = decide({ config: c, currentTarget: 2, runningReplicas: 2, totalRequests: 12, state }).state;
    assert.equal(state.decisionCounter, 3);
    state = decide({ config: c, currentTarget: 2, runningReplicas: 2, totalRequests: 1, state }).state;
    assert.equal(state.decisionCounter, -1);
    const up = decide({ config: c, currentTarget: 2, runningReplicas: 2, totalRequests: 12, state });
    assert.equal(up.state.decisionCounter, 1);
    assert.equal(up.target, 2);
  });

  test('steady load resets the counter to zero', () => {
    const d = decide({
      config: config(),
      currentTarget: 3,
      runningReplicas: 3,
      totalRequests: 6,
      state: { decisionCounter: 4 },
    });
    assert.deepEqual(d, { target: 3, desired: 3, state: { decisionCounter: 0 } });
  });
});

describe('zero', () => {
  test('scale from zero: 0 running, 0 target, 1 queued request -> 1 at once, with no delay', () => {
    const d = decide({
      config: config({ min_replicas: 0, upscale_delay_s: 30 }),
      currentTarget: 0,
      runningReplicas: 0,
      totalRequests: 1,
      state: fresh,
    });
    assert.equal(d.target, 1);
  });

  test('scale from zero with upscaling_factor 2.5 -> ceil(2.5) = 3', () => {
    const d = decide({
      config: config({ min_replicas: 0, upscaling_factor: 2.5 }),
      currentTarget: 0,
      runningReplicas: 0,
      totalRequests: 1,
      state: fresh,
    });
    assert.equal(d.target, 3);
  });

  test('no requests at zero stays at zero', () => {
    const d = decide({
      config: config({ min_replicas: 0 }),
      currentTarget: 0,
      runningReplicas: 0,
      totalRequests: 0,
      state: fresh,
    });
    assert.equal(d.target, 0);
  });

  test('1 -> 0 waits downscale_to_zero_delay_s (0.3 s: 4th decision), not downscale_delay_s', () => {
    const targets = run(
      config({ min_replicas: 0, downscale_delay_s: 600, downscale_to_zero_delay_s: 0.3 }),
      1,
      1,
      0,
      5,
    );
    assert.deepEqual(targets, [1, 1, 1, 0, 0]);
  });

  test('3 -> 0 goes through 1: the last replica waits downscale_to_zero_delay_s (0.3 s)', () => {
    const c = config({ min_replicas: 0, downscale_delay_s: 0, downscale_to_zero_delay_s: 0.3 });
    const targets: number[] = [];
    let state = fresh;
    let target = 3;
    for (let i = 0; i < 6; i++) {
      const running = target;
      const d = decide({
        config: c,
        currentTarget: target,
        runningReplicas: running,
        totalRequests: 0,
        state,
      });
      state = d.state;
      target = d.target;
      targets.push(target);
    }
    assert.deepEqual(targets, [1, 1, 1, 1, 0, 0]);
  });

  test('1 -> 0 without downscale_to_zero_delay_s uses downscale_delay_s (0.2 s: 3rd decision)', () => {
    const targets = run(config({ min_replicas: 0, downscale_delay_s: 0.2 }), 1, 1, 0, 4);
    assert.deepEqual(targets, [1, 1, 0, 0]);
  });

  test('replicas still starting (0 running, target 3) and load: the target holds', () => {
    const d = decide({
      config: config(),
      currentTarget: 3,
      runningReplicas: 0,
      totalRequests: 50,
      state: fresh,
    });
    assert.equal(d.target, 3);
  });
});
