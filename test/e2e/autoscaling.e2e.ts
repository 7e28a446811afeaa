/**
 * Scenario 5: the autoscaling loop on real pods (config/samples/raycluster_autoscaler.yaml). An app
 * the head (0 CPUs) cannot place becomes demand; the head's autoscaler, from inside its pod with its
 * service account, patches the worker group; the operator starts a worker pod that joins and serves.
 * Once the app is gone the idle worker is removed through scaleStrategy.workersToDelete.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClusterClient } from './client.ts';
import { apply, deleteAndWait, installOperator, kubectl, kubectlJson, pods, waitFor } from './support.ts';

const cluster = 'raycluster-autoscaler';
const helloUrl = `http://${cluster}-head-svc.default.svc.cluster.local:8000/hello`;

interface WorkerGroup {
  groupName: string;
  replicas?: number;
  scaleStrategy?: { workersToDelete?: string[] };
}

async function group(): Promise<WorkerGroup> {
  const rc = await kubectlJson<{ spec: { workerGroupSpecs: WorkerGroup[] } }>(['get', 'raycluster', cluster]);
  return rc.spec.workerGroupSpecs[0];
}

async function deploy(head: string, config: string): Promise<void> {
  await kubectl(['exec', '-i', head, '--', 'rayline', 'serve', 'deploy', '/dev/stdin'], { input: config });
}

describe('the autoscaling loop on a real cluster', () => {
  let client: ClusterClient;
  let head = '';

  before(async () => {
    await installOperator();
    client = await ClusterClient.start();
    await apply({ file: 'config/samples/raycluster_autoscaler.yaml' });
    // A short idle timeout so that the scale-down half fits the suite's time.
    await kubectl([
      'patch',
      'raycluster',
      cluster,
      '--type=merge',
      '-p',
      '{"spec":{"autoscalerOptions":{"idleTimeoutSeconds":15}}}',
    ]);
    const [pod] = await waitFor(
      'a Ready head',
      async () => {
        const list = await pods('default', `rayline.dev/cluster=${cluster},rayline.dev/node-type=head`);
        return list.length === 1 && list[0].ready ? list : undefined;
      },
      300_000,
    );
    head = pod.name;
  });

  after(async () => {
    await deleteAndWait('raycluster', cluster, 'default', `rayline.dev/cluster=${cluster}`);
    await client?.delete();
  });

  test('demand becomes a worker pod that serves, and an idle worker is removed', async () => {
    assert.equal((await group()).replicas, 0);
    const demanded = Date.now();
    await deploy(
      head,
      [
        'applications:',
        '  - name: hello',
        '    route_prefix: /hello',
        '    import_path: app.ts:app',
        '    runtime_env: {working_dir: /app/examples/hello}',
        '    deployments: [{name: HelloModel, num_replicas: 1}]',
      ].join('\n'),
    );
    const patched = await waitFor(
      'the head to patch its worker group',
      async () => (((await group()).replicas ?? 0) > 0 ? Date.now() : undefined),
      120_000,
    );
    assert.equal((await group()).replicas, 1);
    const [worker] = await waitFor(
      'a Ready worker pod',
      async () => {
        const list = await pods('default', `rayline.dev/cluster=${cluster},rayline.dev/node-type=worker`);
        return list.length === 1 && list[0].ready ? list : undefined;
      },
      300_000,
    );
    const answer = await waitFor(
      'hello served by the new worker',
      async () => {
        const a = await client.request(helloUrl);
        return a.status === 200 ? a : undefined;
      },
      300_000,
    );
    const servingS = (Date.now() - demanded) / 1000;
    assert.deepEqual(JSON.parse(answer.body), { message: 'Hello from Rayline!', path: '/hello' });
    console.log(
      `autoscaling: group patched ${((patched - demanded) / 1000).toFixed(1)} s after the deploy, worker serving after ${servingS.toFixed(1)} s`,
    );

    await deploy(head, 'applications: []');
    const sawDeletion = await waitFor(
      'the head to list the idle worker in workersToDelete',
      async () => {
        const g = await group();
        return g.scaleStrategy?.workersToDelete?.includes(worker.name) ? g : undefined;
      },
      180_000,
      250,
    ).catch(() => undefined);
    await waitFor(
      `worker ${worker.name} removed`,
      async () =>
        (await pods('default', `rayline.dev/cluster=${cluster},rayline.dev/node-type=worker`)).length === 0,
      240_000,
    );
    const final = await waitFor(
      'replicas 0 and workersToDelete cleared',
      async () => {
        const g = await group();
        return g.replicas === 0 && (g.scaleStrategy?.workersToDelete ?? []).length === 0 ? g : undefined;
      },
      120_000,
    );
    assert.equal(final.replicas, 0);
    assert.ok(sawDeletion, 'the worker was removed through workersToDelete');
  });
});
