/**
 * Scenario 7: the seed's GPU RayService (config/samples/rayservice_llm.yaml) on a node without GPUs.
 * Its GPU workers stay Pending, and within a minute the RayService's Ready condition says why, in the
 * scheduler's words, instead of waiting silently.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apply,
  condition,
  deleteAndWait,
  installOperator,
  type KubeObject,
  kubectlJson,
  pods,
  waitFor,
} from './support.ts';

describe('a GPU RayService on a node without GPUs', () => {
  before(async () => {
    await installOperator();
  });

  after(async () => {
    await deleteAndWait('rayservice', 'llm-service', 'default', 'rayline.dev/cluster');
  });

  test('leaves its GPU workers Pending and says why within a minute', async () => {
    const applied = Date.now();
    await apply({ file: 'config/samples/rayservice_llm.yaml' });
    const ready = await waitFor(
      'the Ready condition to name the missing GPUs',
      async () => {
        const rs = await kubectlJson<KubeObject>(['get', 'rayservice', 'llm-service']);
        const c = condition(rs, 'Ready');
        return c?.message?.includes('Insufficient nvidia.com/gpu') ? c : undefined;
      },
      60_000,
    );
    console.log(
      `GPU shortage reported ${((Date.now() - applied) / 1000).toFixed(1)} s after apply: ${ready.message}`,
    );
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'PodUnschedulable');
    const workers = await pods('default', 'rayline.dev/group=gpu-workers');
    assert.equal(workers.length, 2);
    assert.ok(
      workers.every((p) => p.phase === 'Pending'),
      JSON.stringify(workers),
    );
  });
});
