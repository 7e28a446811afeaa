/** Deployment configuration to placement requests: Ray's defaults and field mapping. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DeploymentConfig, deploymentDefaults } from '../../schema/deployment-config.ts';
import { replicaRequest, resourcesFromActorOptions } from './request.ts';
import { GiB, node, run } from './test-support.ts';

describe('resourcesFromActorOptions', () => {
  test('one CPU by default, as in Ray, also when other options are given', () => {
    assert.deepEqual(resourcesFromActorOptions(undefined), { CPU: 1 });
    assert.deepEqual(resourcesFromActorOptions({}), { CPU: 1 });
    assert.deepEqual(resourcesFromActorOptions({ num_gpus: 0.5 }), { CPU: 1, GPU: 0.5 });
  });

  test('num_cpus 0 takes no CPU; memory and custom resources carry over', () => {
    assert.deepEqual(
      resourcesFromActorOptions({ num_cpus: 0, num_gpus: 1, memory: 2 * GiB, resources: { TPU: 2 } }),
      {
        GPU: 1,
        memory: 2 * GiB,
        TPU: 2,
      },
    );
  });
});

describe('replicaRequest', () => {
  test('a deployment with defaults asks for one CPU: a 2-CPU node runs two, the third waits', () => {
    const requests = ['r1', 'r2', 'r3'].map((id) => replicaRequest(id, 'app/D', deploymentDefaults));
    assert.deepEqual(requests[0], { replicaId: 'r1', deployment: 'app/D', resources: { CPU: 1 } });
    const { placements, pending } = run([node('a', { CPU: 2 })], requests);
    assert.deepEqual(
      placements.map((p) => p.replicaId),
      ['r1', 'r2'],
    );
    assert.deepEqual(
      pending.map((p) => p.reason),
      ['needs {CPU: 1}; free: a (nothing free)'],
    );
  });

  test('maps placement_group_bundles, their strategy (PACK by default) and max_replicas_per_node', () => {
    const config: DeploymentConfig = {
      ...deploymentDefaults,
      ray_actor_options: { num_cpus: 1, num_gpus: 1 },
      placement_group_bundles: [{ CPU: 1, GPU: 1 }, { GPU: 1 }],
      max_replicas_per_node: 1,
    };
    assert.deepEqual(replicaRequest('r', 'app/D', config), {
      replicaId: 'r',
      deployment: 'app/D',
      resources: { CPU: 1, GPU: 1 },
      bundles: [{ CPU: 1, GPU: 1 }, { GPU: 1 }],
      strategy: 'PACK',
      maxReplicasPerNode: 1,
    });
  });
});
