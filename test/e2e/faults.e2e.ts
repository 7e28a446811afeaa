/**
 * Scenario 6: faults under continuous load, on the pipeline sample set up as KubeRay recommends for
 * availability (no replicas on the head: `num-cpus: "0"`, three workers). Deleting the head pod
 * fails no request (workers serve on; the new head adopts their replicas); deleting a worker pod
 * fails none either (it hands its clients off and drains); restarting the operator in the middle
 * of an upgrade still completes it, with exactly one pending cluster ever.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClusterClient } from './client.ts';
import { LoadClient } from './load.ts';
import {
  deployPipeline,
  headPod,
  pipelineManifest,
  rayService,
  serveStatus,
  serveUrlOf,
  text,
} from './pipeline-app.ts';
import {
  condition,
  deleteAndWait,
  installOperator,
  type KubeObject,
  kubectl,
  kubectlJson,
  operatorNamespace,
  operatorRelease,
  pods,
  saveLogs,
  waitFor,
} from './support.ts';

const name = 'pipeline-ha';
const serveUrl = serveUrlOf(name);

describe('faults under load', () => {
  let client: ClusterClient;
  let cluster = '';

  const clusterPods = () => pods('default', `rayline.dev/cluster=${cluster}`);
  const allRunning = async () => {
    const status = await serveStatus(cluster);
    const app = status.applications.pipeline;
    return app?.status === 'RUNNING' && Object.values(app.deployments).every((d) => d.status === 'HEALTHY');
  };

  before(async () => {
    await installOperator();
    client = await ClusterClient.start('e2e-faults-client');
    const manifest = await pipelineManifest();
    manifest.metadata.name = name;
    const spec = manifest.spec.rayClusterConfig;
    spec.headGroupSpec.rayStartParams['num-cpus'] = '0';
    spec.workerGroupSpecs[0].replicas = 3;
    // Four pods, twice during the upgrade, on a 2-CPU node.
    for (const template of [spec.headGroupSpec.template, spec.workerGroupSpecs[0].template]) {
      template.spec.containers[0].resources.requests.cpu = '200m';
    }
    cluster = await deployPipeline(client, manifest);
    await waitFor('four Ready pods', async () => {
      const list = await clusterPods();
      return list.length === 4 && list.every((p) => p.ready);
    });
  });

  after(async () => {
    await saveLogs('faults', 'default', `rayline.dev/cluster`);
    await saveLogs('faults-operator', operatorNamespace, `app.kubernetes.io/instance=${operatorRelease}`);
    await deleteAndWait('rayservice', name, 'default', 'rayline.dev/cluster');
    await client?.delete();
  });

  test('deleting the head pod fails no request; the new head serves and the RayService is Ready', async () => {
    const stats = await LoadClient.during('head deleted, recovered after', serveUrl, { text }, async () => {
      const oldHead = await headPod(cluster);
      await kubectl(['delete', 'pod', oldHead, '--wait=false']);
      await waitFor('a new Ready head pod', async () => {
        const heads = (await clusterPods()).filter((p) => p.labels['rayline.dev/node-type'] === 'head');
        return heads.length === 1 && heads[0].name !== oldHead && heads[0].ready;
      });
      await waitFor('the new head to run every deployment', allRunning);
      await waitFor(
        'RayService Ready',
        async () => condition(await rayService(name), 'Ready')?.status === 'True',
      );
    });
    assert.deepEqual(stats.failures, []);
  });

  test('deleting a worker pod fails no request; a new worker joins', async () => {
    const stats = await LoadClient.during('worker deleted, recovered after', serveUrl, { text }, async () => {
      const [victim] = (await clusterPods()).filter((p) => p.labels['rayline.dev/node-type'] === 'worker');
      await kubectl(['delete', 'pod', victim.name, '--wait=false']);
      await waitFor('three Ready workers again, without the deleted one', async () => {
        const workers = (await clusterPods()).filter((p) => p.labels['rayline.dev/node-type'] === 'worker');
        return workers.length === 3 && workers.every((p) => p.ready && p.name !== victim.name);
      });
      await waitFor('every deployment healthy', allRunning);
    });
    assert.deepEqual(stats.failures, []);
  });

  test('an operator restarted mid-upgrade completes it with exactly one pending cluster', async () => {
    const seen = new Set<string>([cluster]);
    let pending = '';
    const watchClusters = async () => {
      const list = await kubectlJson<{ items: KubeObject[] }>([
        'get',
        'rayclusters',
        '-l',
        `rayline.dev/originated-from-cr-name=${name}`,
      ]);
      for (const c of list.items) seen.add(c.metadata.name);
    };
    const stats = await LoadClient.during(
      'operator restarted mid-upgrade, switched after',
      serveUrl,
      { text },
      async () => {
        const patch = [
          { op: 'add', path: '/spec/rayClusterDeletionDelaySeconds', value: 10 },
          {
            op: 'add',
            path: '/spec/rayClusterConfig/headGroupSpec/template/metadata',
            value: { annotations: { 'e2e.rayline.dev/revision': '2' } },
          },
        ];
        await kubectl(['patch', 'rayservice', name, '--type=json', '-p', JSON.stringify(patch)]);
        pending = await waitFor('a pending cluster', async () => {
          await watchClusters();
          return (await rayService(name)).status?.pendingServiceStatus?.rayClusterName;
        });
        const [operatorPod] = await pods(operatorNamespace, `app.kubernetes.io/instance=${operatorRelease}`);
        await kubectl(['delete', 'pod', '-n', operatorNamespace, operatorPod.name, '--wait=false']);
        await waitFor(
          'the switch to the pending cluster',
          async () => {
            await watchClusters();
            return (await rayService(name)).status?.activeServiceStatus?.rayClusterName === pending;
          },
          600_000,
        );
        await waitFor(`old cluster ${cluster} deleted`, async () => {
          await watchClusters();
          const list = await kubectlJson<{ items: KubeObject[] }>(['get', 'rayclusters']);
          return !list.items.some((c) => c.metadata.name === cluster);
        });
      },
    );
    assert.deepEqual([...seen].sort(), [cluster, pending].sort(), 'exactly one pending cluster ever');
    assert.deepEqual(stats.failures, []);
    cluster = pending;
  });
});
