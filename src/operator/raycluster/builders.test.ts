import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rayClusterSpecSchema } from '../../schema/raycluster.ts';
import { buildHeadPod, buildWorkerPod, type ClusterRef } from './pod-builder.ts';
import { buildAutoscalerRbac, buildHeadService, buildTokenSecret } from './resources-builder.ts';

const cluster: ClusterRef = { name: 'demo', namespace: 'ml', uid: 'uid-1' };

function spec(overrides: Record<string, unknown> = {}) {
  return rayClusterSpecSchema.parse({
    headGroupSpec: {
      rayStartParams: { 'dashboard-host': '0.0.0.0', 'num-cpus': '0', 'include-dashboard': 'true' },
      template: {
        metadata: { labels: { team: 'ml', 'rayline.dev/cluster': 'spoofed' } },
        spec: {
          containers: [
            {
              name: 'head',
              image: 'rayline/rayline:0.1.0',
              resources: { limits: { cpu: '4', memory: '16Gi' } },
            },
          ],
        },
      },
    },
    workerGroupSpecs: [
      {
        groupName: 'gpu-workers',
        replicas: 2,
        rayStartParams: {},
        template: {
          spec: {
            containers: [
              {
                name: 'worker',
                image: 'rayline/rayline:0.1.0',
                resources: { requests: { cpu: '7500m' }, limits: { memory: '32Gi', 'nvidia.com/gpu': 1 } },
                env: [{ name: 'RAYLINE_GROUP', value: 'mine' }],
                readinessProbe: { exec: { command: ['true'] } },
              },
              { name: 'sidecar', image: 'busybox' },
            ],
          },
        },
      },
    ],
    ...overrides,
  });
}

test('head pod: identity labels win over the template, owner reference, generateName, sorted start flags', () => {
  const pod = buildHeadPod(cluster, spec());
  assert.equal(pod.metadata?.generateName, 'demo-head-');
  assert.deepEqual(pod.metadata?.labels, {
    team: 'ml',
    'rayline.dev/cluster': 'demo',
    'rayline.dev/node-type': 'head',
    'rayline.dev/group': 'headgroup',
    'rayline.dev/identifier': 'demo-head',
    'app.kubernetes.io/name': 'rayline',
    'app.kubernetes.io/created-by': 'rayline-operator',
  });
  assert.deepEqual(pod.metadata?.ownerReferences, [
    {
      apiVersion: 'rayline.dev/v1',
      kind: 'RayCluster',
      name: 'demo',
      uid: 'uid-1',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  const [container] = pod.spec?.containers ?? [];
  // Explicit num-cpus ("0": a head that runs no replicas) beats the 4 derived from the limits.
  assert.deepEqual(container?.args, [
    'start',
    '--head',
    '--block',
    '--dashboard-host=0.0.0.0',
    '--include-dashboard',
    `--memory=${16 * 2 ** 30}`,
    '--num-cpus=0',
  ]);
  assert.deepEqual(
    container?.ports?.map((p) => [p.name, p.containerPort]),
    [
      ['gcs-server', 6379],
      ['dashboard', 8265],
      ['serve', 8000],
      ['metrics', 8080],
    ],
  );
  assert.deepEqual(container?.readinessProbe?.httpGet, { path: '/-/healthz', port: 8265 });
  assert.equal(container?.livenessProbe?.failureThreshold, 120);
  assert.deepEqual(pod.spec?.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
  });
  assert.equal(pod.spec?.automountServiceAccountToken, false);
  assert.deepEqual(container?.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
});

test('a template securityContext is merged over the non-root defaults, not in place of them', () => {
  const base = spec();
  const withFsGroup = {
    ...base,
    headGroupSpec: {
      ...base.headGroupSpec,
      template: {
        spec: {
          securityContext: { fsGroup: 2000 },
          containers: [{ name: 'h', securityContext: { privileged: false } }],
        },
      },
    },
  };
  const pod = buildHeadPod(cluster, withFsGroup);
  assert.deepEqual(pod.spec?.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 2000,
  });
  assert.deepEqual(pod.spec?.containers[0]?.securityContext, { privileged: false });
});

test('worker pod: joins the head service FQDN, flags from requests and GPU limits, user env and probes kept', () => {
  const [group] = spec().workerGroupSpecs;
  assert.ok(group);
  const pod = buildWorkerPod(cluster, group);
  assert.equal(pod.metadata?.generateName, 'demo-gpu-workers-worker-');
  const [container, sidecar] = pod.spec?.containers ?? [];
  assert.deepEqual(container?.args, [
    'start',
    '--address=demo-head-svc.ml.svc.cluster.local:6379',
    '--block',
    `--memory=${32 * 2 ** 30}`,
    '--num-cpus=8',
    '--num-gpus=1',
  ]);
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.equal(env.RAYLINE_GROUP, 'mine');
  assert.equal(env.RAYLINE_NODE_TYPE, 'worker');
  assert.equal(env.RAYLINE_HEAD_ADDRESS, 'demo-head-svc.ml.svc.cluster.local:6379');
  assert.deepEqual(env.RAYLINE_POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
  assert.deepEqual(env.RAYLINE_API_TOKEN, { secretKeyRef: { name: 'demo-token', key: 'token' } });
  assert.deepEqual(container?.readinessProbe, { exec: { command: ['true'] } });
  assert.deepEqual(container?.livenessProbe?.httpGet, { path: '/-/healthz', port: 8080 });
  assert.deepEqual(sidecar, { name: 'sidecar', image: 'busybox' });
});

test('other accelerators become custom resources; a container with its own command is left alone', () => {
  const tpu = spec({
    workerGroupSpecs: [
      {
        groupName: 'tpu',
        template: { spec: { containers: [{ name: 'w', resources: { limits: { 'google.com/tpu': '4' } } }] } },
      },
      {
        groupName: 'custom',
        template: { spec: { containers: [{ name: 'w', command: ['sleep', 'infinity'] }] } },
      },
    ],
  });
  const [tpuGroup, customGroup] = tpu.workerGroupSpecs;
  assert.ok(tpuGroup && customGroup);
  assert.ok(buildWorkerPod(cluster, tpuGroup).spec?.containers[0]?.args?.includes('--resources={"TPU":4}'));
  const custom = buildWorkerPod(cluster, customGroup).spec?.containers[0];
  assert.deepEqual([custom?.command, custom?.args], [['sleep', 'infinity'], undefined]);
});

test('in-tree autoscaling: the head runs the Kubernetes provider under its own service account with a narrow role', () => {
  const pod = buildHeadPod(cluster, spec({ enableInTreeAutoscaling: true }));
  assert.equal(pod.spec?.serviceAccountName, 'demo-autoscaler');
  assert.equal(pod.spec?.automountServiceAccountToken, true);
  assert.ok(pod.spec?.containers[0]?.args?.includes('--autoscaling-provider=kubernetes'));
  const [account, role, binding] = buildAutoscalerRbac(cluster);
  assert.equal(account.metadata?.name, 'demo-autoscaler');
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    {
      apiGroups: ['rayline.dev'],
      resources: ['rayclusters'],
      resourceNames: ['demo'],
      verbs: ['get', 'patch'],
    },
  ]);
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'demo-autoscaler', namespace: 'ml' }]);
  assert.equal(binding.roleRef.name, 'demo-autoscaler');
});

test('head service: headless with not-ready addresses and the four ports, or a regular service when typed', () => {
  const svc = buildHeadService(cluster, spec({ headServiceAnnotations: { a: 'b' } }));
  assert.equal(svc.metadata?.name, 'demo-head-svc');
  assert.deepEqual(svc.metadata?.annotations, { a: 'b' });
  assert.equal(svc.spec?.clusterIP, 'None');
  assert.equal(svc.spec?.publishNotReadyAddresses, true);
  assert.deepEqual(svc.spec?.selector, { 'rayline.dev/cluster': 'demo', 'rayline.dev/node-type': 'head' });
  assert.deepEqual(
    svc.spec?.ports?.map((p) => `${p.name}:${p.port}`),
    ['gcs-server:6379', 'dashboard:8265', 'serve:8000', 'metrics:8080'],
  );
  const base = spec();
  const lb = buildHeadService(cluster, {
    ...base,
    headGroupSpec: { ...base.headGroupSpec, serviceType: 'LoadBalancer' },
  });
  assert.equal(lb.spec?.type, 'LoadBalancer');
  assert.equal(lb.spec?.clusterIP, undefined);
});

test('token secret: random per cluster, owned by it', () => {
  const a = buildTokenSecret(cluster);
  const b = buildTokenSecret(cluster);
  assert.equal(a.metadata?.name, 'demo-token');
  assert.notEqual(a.stringData?.token, b.stringData?.token);
  assert.ok((a.stringData?.token.length ?? 0) >= 32);
  assert.equal(a.metadata?.ownerReferences?.[0]?.uid, 'uid-1');
});
