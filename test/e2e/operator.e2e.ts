/**
 * Scenario 1: `helm install` of the operator chart with the image built from the Dockerfile. The
 * operator pod becomes Ready, answers its probes and metrics (reached through the API server's pod
 * proxy, as `kubectl get --raw` users do) and holds its leader-election Lease.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  installOperator,
  kubectl,
  kubectlJson,
  operatorNamespace,
  operatorRelease,
  pods,
  waitFor,
} from './support.ts';

describe('operator installed by helm', () => {
  let podName = '';

  before(async () => {
    await installOperator();
    const [pod] = await waitFor('a Ready operator pod', async () => {
      const list = await pods(operatorNamespace, `app.kubernetes.io/instance=${operatorRelease}`);
      return list.length === 1 && list[0].ready ? list : undefined;
    });
    podName = pod.name;
  });

  test('runs the image as uid 1000 and answers /healthz, /readyz and /metrics', async () => {
    const pod = await kubectlJson<{ spec: { containers: { image: string }[] } }>([
      'get',
      'pod',
      podName,
      '-n',
      operatorNamespace,
    ]);
    assert.equal(pod.spec.containers[0].image, process.env.RAYLINE_IMAGE ?? 'rayline/rayline:0.1.0');
    assert.equal(
      (await kubectl(['exec', '-n', operatorNamespace, podName, '--', 'id', '-u'])).trim(),
      '1000',
    );
    const proxy = (port: number, path: string) =>
      kubectl([
        'get',
        '--raw',
        `/api/v1/namespaces/${operatorNamespace}/pods/${podName}:${port}/proxy${path}`,
      ]);
    assert.match(await proxy(8081, '/healthz'), /ok/i);
    assert.match(await proxy(8081, '/readyz'), /ok/i);
    const metrics = await proxy(8080, '/metrics');
    assert.match(metrics, /^rayline_operator_leader 1$/m);
    assert.match(metrics, /^# TYPE controller_runtime_reconcile_total counter$/m);
  });

  test('holds the leader-election Lease', async () => {
    const lease = await waitFor('the Lease held by the operator pod', async () => {
      const l = await kubectlJson<{ spec: { holderIdentity?: string } }>([
        'get',
        'lease',
        operatorRelease,
        '-n',
        operatorNamespace,
      ]);
      return l.spec.holderIdentity?.startsWith(podName) ? l : undefined;
    });
    assert.ok(lease.spec.holderIdentity);
  });

  test('installed the CRDs with the chart', async () => {
    const crds = await kubectl(['get', 'crd', '-o', 'name']);
    assert.match(crds, /rayclusters\.rayline\.dev/);
    assert.match(crds, /rayservices\.rayline\.dev/);
  });
});
