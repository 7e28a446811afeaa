/**
 * The repository's pipeline sample (config/samples/rayservice_pipeline.yaml) as the scenarios use
 * it: deployed and serving, its RayService and head, and `rayline serve status` read in the head.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import yaml from 'js-yaml';
import type { ClusterClient } from './client.ts';
import {
  apply,
  condition,
  type KubeObject,
  kubectl,
  kubectlJson,
  pods,
  repoRoot,
  waitFor,
} from './support.ts';

export const pipelineName = 'pipeline';

/** The route of the pipeline through a RayService's serve service, as in-cluster clients call it. */
export function serveUrlOf(name: string): string {
  return `http://${name}-serve-svc.default.svc.cluster.local:8000/analyze`;
}
export const serveUrl = serveUrlOf(pipelineName);
export const text =
  'The new solar farm opened this week. Residents are delighted with the cleaner air. ' +
  'The council plans a second farm next year. Critics worry about the cost to taxpayers.';

export interface ServiceStatus {
  rayClusterName?: string;
  applicationStatuses?: Record<string, { status?: string }>;
}

export type RayServiceObject = KubeObject & {
  status?: { activeServiceStatus?: ServiceStatus; pendingServiceStatus?: ServiceStatus };
};

export function rayService(name = pipelineName): Promise<RayServiceObject> {
  return kubectlJson(['get', 'rayservice', name]);
}

export async function headPod(cluster: string): Promise<string> {
  const [head] = await pods('default', `rayline.dev/cluster=${cluster},rayline.dev/node-type=head`);
  assert.ok(head, `a head pod of ${cluster}`);
  return head.name;
}

export interface ServeStatus {
  applications: Record<
    string,
    {
      status: string;
      deployments: Record<string, { status: string; replica_states: Record<string, number> }>;
    }
  >;
}

export async function serveStatus(cluster: string): Promise<ServeStatus> {
  return yaml.load(
    await kubectl(['exec', await headPod(cluster), '--', 'rayline', 'serve', 'status']),
  ) as ServeStatus;
}

/** The sample's manifest, to be changed by a scenario before it applies it. */
export async function pipelineManifest(): Promise<RayServiceManifest> {
  return yaml.load(
    await readFile(`${repoRoot}config/samples/rayservice_pipeline.yaml`, 'utf8'),
  ) as RayServiceManifest;
}

interface PodTemplate {
  spec: { containers: { resources: { requests: Record<string, string> } }[] };
}

export interface RayServiceManifest {
  metadata: { name: string };
  spec: {
    serveConfigV2: string;
    rayClusterConfig: {
      headGroupSpec: { rayStartParams: Record<string, string>; template: PodTemplate };
      workerGroupSpecs: { replicas: number; template: PodTemplate }[];
    };
  };
}

/**
 * Applies the sample (or a scenario's variant of it), waits for Ready and for the serve service to
 * answer; returns the active cluster.
 */
export async function deployPipeline(client: ClusterClient, manifest?: RayServiceManifest): Promise<string> {
  const name = manifest?.metadata.name ?? pipelineName;
  await apply(
    manifest ? { yaml: JSON.stringify(manifest) } : { file: 'config/samples/rayservice_pipeline.yaml' },
  );
  const service = await waitFor(
    `RayService ${name} Ready`,
    async () => {
      const rs = await rayService(name);
      return condition(rs, 'Ready')?.status === 'True' ? rs : undefined;
    },
    600_000,
    1000,
  );
  const cluster = service.status?.activeServiceStatus?.rayClusterName ?? '';
  assert.ok(cluster, 'the RayService names its active cluster');
  // Ready means a pod backs the serve service; kube-proxy programs its address a moment later.
  await waitFor(
    'the serve service to route',
    async () => {
      const answer = await client.request(serveUrlOf(name), { text });
      if (answer.status !== 200) throw new Error(`${answer.status} ${answer.body}`);
      return answer;
    },
    60_000,
  );
  return cluster;
}
