/**
 * Scenarios 2–4 on the repository's pipeline sample (config/samples/rayservice_pipeline.yaml):
 * serving through `<name>-serve-svc`, an in-place serveConfigV2 update and a zero-downtime cluster
 * upgrade, both under continuous load from a client pod, which must see no failed request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import yaml from 'js-yaml';
import { ExtractiveSummarizer, preprocess, SentimentAnalyzer } from '../../examples/pipeline/nlp.ts';
import { ClusterClient } from './client.ts';
import { LoadClient } from './load.ts';
import {
  deployPipeline,
  pipelineName as name,
  pipelineManifest,
  rayService,
  serveStatus,
  serveUrl,
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

describe('pipeline RayService from config/samples', () => {
  let client: ClusterClient;
  let cluster = '';

  before(async () => {
    await installOperator();
    client = await ClusterClient.start();
    cluster = await deployPipeline(client);
  });

  after(async () => {
    await saveLogs('pipeline', 'default', 'rayline.dev/cluster');
    await saveLogs('pipeline-operator', operatorNamespace, `app.kubernetes.io/instance=${operatorRelease}`);
    await deleteAndWait('rayservice', name, 'default', `rayline.dev/cluster`);
    await client?.delete();
  });

  test('answers POST /analyze through the serve service with what the same code answers here', async () => {
    const answer = await client.request(serveUrl, { text });
    assert.equal(answer.status, 200, answer.body);
    const processed = preprocess(text);
    assert.deepEqual(JSON.parse(answer.body), {
      original_length: processed.length,
      sentiment: new SentimentAnalyzer().analyze(processed.text),
      summary: new ExtractiveSummarizer().summarize(text),
    });
  });

  test('kubectl shows the head and both workers Running and Ready', async () => {
    // Ready needs the serve service to have a pod, not every worker: they pass their probes later.
    const nodes = await waitFor('three Ready pods', async () => {
      const list = await pods('default', `rayline.dev/cluster=${cluster}`);
      return list.length === 3 && list.every((p) => p.ready) ? list : undefined;
    });
    assert.deepEqual(nodes.map((p) => [p.labels['rayline.dev/node-type'], p.phase, p.ready]).sort(), [
      ['head', 'Running', true],
      ['worker', 'Running', true],
      ['worker', 'Running', true],
    ]);
  });

  test('rayline serve status in the head shows the app RUNNING', async () => {
    const status = await serveStatus(cluster);
    assert.equal(status.applications.pipeline.status, 'RUNNING');
    assert.deepEqual(status.applications.pipeline.deployments.Preprocessor.replica_states, { RUNNING: 2 });
  });

  test('an in-place serveConfigV2 update keeps the cluster and fails no request', async () => {
    const stats = await LoadClient.during('in-place update applied after', serveUrl, { text }, async () => {
      const sample = await pipelineManifest();
      const config = yaml.load(sample.spec.serveConfigV2) as { applications: { deployments: object[] }[] };
      config.applications[0].deployments = [
        { name: 'Preprocessor', num_replicas: 3 },
        { name: 'SummaryModel', user_config: { ratio: 1 } },
      ];
      const patch = { spec: { serveConfigV2: yaml.dump(config) } };
      await kubectl(['patch', 'rayservice', name, '--type=merge', '-p', JSON.stringify(patch)]);
      await waitFor('the summary to keep every sentence (user_config applied)', async () => {
        const answer = await client.request(serveUrl, { text });
        return answer.status === 200 && JSON.parse(answer.body).summary === text;
      });
      await waitFor('3 Preprocessor replicas RUNNING', async () => {
        const states = (await serveStatus(cluster)).applications.pipeline.deployments.Preprocessor
          .replica_states;
        return states.RUNNING === 3 && Object.keys(states).length === 1;
      });
    });
    const rs = await rayService();
    assert.equal(rs.status?.activeServiceStatus?.rayClusterName, cluster, 'same cluster');
    assert.equal(rs.status?.pendingServiceStatus?.rayClusterName, undefined, 'no pending cluster');
    assert.deepEqual(stats.failures, []);
    assert.equal(stats.failed, 0);
  });

  test('a cluster upgrade switches to a new cluster with no failed request', async () => {
    let next = '';
    const stats = await LoadClient.during(
      'cluster upgrade, old cluster gone after',
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
        const started = Date.now();
        await kubectl(['patch', 'rayservice', name, '--type=json', '-p', JSON.stringify(patch)]);
        const pendingNames = new Set<string>();
        next = await waitFor(
          'the switch to a new cluster',
          async () => {
            const rs = await rayService();
            const pending = rs.status?.pendingServiceStatus?.rayClusterName;
            if (pending) pendingNames.add(pending);
            const active = rs.status?.activeServiceStatus?.rayClusterName;
            return active && active !== cluster ? active : undefined;
          },
          600_000,
          500,
        );
        console.log(
          `cluster upgrade: traffic switched after ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        assert.deepEqual([...pendingNames], [next], 'exactly one pending cluster, the one switched to');
        const old = await kubectlJson<KubeObject & { metadata: { deletionTimestamp?: string } }>([
          'get',
          'raycluster',
          cluster,
        ]);
        assert.equal(
          old.metadata.deletionTimestamp,
          undefined,
          'the old cluster is kept for rayClusterDeletionDelaySeconds',
        );
        await waitFor(
          `old cluster ${cluster} deleted`,
          async () => {
            const list = await kubectlJson<{ items: KubeObject[] }>(['get', 'rayclusters']);
            return !list.items.some((c) => c.metadata.name === cluster);
          },
          180_000,
        );
        await waitFor(
          `pods of ${cluster} gone`,
          async () => (await pods('default', `rayline.dev/cluster=${cluster}`)).length === 0,
        );
      },
    );
    assert.deepEqual(stats.failures, []);
    assert.equal(stats.failed, 0);
    assert.equal(condition(await rayService(), 'Ready')?.status, 'True');
    cluster = next;
  });
});
