/**
 * The ways Rayline is installed, checked against a real kube-apiserver: the kustomize bases in
 * config/, the samples, the helm chart, the CRD copies they carry, the operator's RBAC (enough to
 * grant what it hands head pods) and the Pod Security level its pod meets. The Dockerfile cannot be
 * built here (no image can be pulled) and is not tested.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { parseServeConfig } from '../src/schema/serve-config.ts';
import { type CommandResult, type KubeTestEnv, startKubeTestEnv } from './kube/env.ts';

const root = new URL('../', import.meta.url);
/** A path of the repository, absolute, for kubectl and helm. */
const at = (path: string): string => fileURLToPath(new URL(path, root));
const systemNamespace = 'rayline-system';
const operatorAccount = `system:serviceaccount:${systemNamespace}:rayline-operator`;

// biome-ignore lint/suspicious/noExplicitAny: manifests are asserted field by field
type Manifest = any;

let env: KubeTestEnv;
/** The API server's version: helm's own default (v1.20 in a build without its release flags) is
 * older than the chart's kubeVersion. */
let kubeVersion: string;

before(async () => {
  env = await startKubeTestEnv();
  const version = JSON.parse((await kubectlOk(['version', '-o', 'json'])).stdout);
  kubeVersion = version.serverVersion.gitVersion;
  // A server-side dry run of an object in a namespace that does not exist fails, so the operator's
  // namespace (labelled for the restricted Pod Security level) is created for real.
  await kubectlOk(['apply', '-f', at('config/manager/namespace.yaml')]);
  await kubectlOk(['create', 'namespace', 'samples']);
});

after(async () => {
  await env?.stop();
});

describe('CRD copies', () => {
  test('config/crd/bases and the chart carry crds/ byte for byte, and config/crd lists every file', async () => {
    const crdFiles = await yamlFiles('crds');
    assert.deepEqual(crdFiles, ['rayline.dev_rayclusters.yaml', 'rayline.dev_rayservices.yaml']);
    for (const copyDir of ['config/crd/bases', 'charts/rayline-operator/files/crds']) {
      assert.deepEqual(await yamlFiles(copyDir), crdFiles, `${copyDir} holds the same files as crds/`);
      for (const file of crdFiles) {
        assert.ok(
          (await readBytes(`${copyDir}/${file}`)).equals(await readBytes(`crds/${file}`)),
          `${copyDir}/${file} differs from crds/${file}: cp crds/*.yaml ${copyDir}/`,
        );
      }
    }
    const kustomization = yaml.load(await readText('config/crd/kustomization.yaml')) as Manifest;
    assert.deepEqual(
      kustomization.resources,
      crdFiles.map((f) => `bases/${f}`),
    );
  });

  test('the chart renders the CRDs of crds/ (plus its labels and keep policy) unless crds.install=false', async () => {
    const expected = new Map<string, Manifest>();
    for (const file of await yamlFiles('crds')) {
      const crd = yaml.load(await readText(`crds/${file}`)) as Manifest;
      expected.set(crd.metadata.name, crd);
    }
    const rendered = (await helmTemplate()).filter((d) => d.kind === 'CustomResourceDefinition');
    assert.deepEqual(rendered.map((d) => d.metadata.name).sort(), [...expected.keys()].sort());
    for (const crd of rendered) {
      assert.equal(crd.metadata.annotations['helm.sh/resource-policy'], 'keep');
      assert.equal(crd.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
      const { labels: _labels, annotations: _annotations, ...metadata } = crd.metadata;
      assert.deepEqual({ ...crd, metadata }, expected.get(crd.metadata.name));
    }
    const withoutCrds = await helmTemplate(['--set', 'crds.install=false']);
    assert.equal(withoutCrds.filter((d) => d.kind === 'CustomResourceDefinition').length, 0);
    const unkept = await helmTemplate(['--set', 'crds.keep=false']);
    for (const crd of unkept.filter((d) => d.kind === 'CustomResourceDefinition')) {
      assert.equal(crd.metadata.annotations, undefined);
    }
  });
});

describe('config/ (kustomize)', () => {
  test('kubectl apply --dry-run=server -k config/default accepts every object', async () => {
    const result = await kubectlOk(['apply', '--dry-run=server', '-k', at('config/default')]);
    for (const object of [
      'namespace/rayline-system',
      'customresourcedefinition.apiextensions.k8s.io/rayclusters.rayline.dev',
      'customresourcedefinition.apiextensions.k8s.io/rayservices.rayline.dev',
      'serviceaccount/rayline-operator',
      'role.rbac.authorization.k8s.io/rayline-operator-leader-election',
      'clusterrole.rbac.authorization.k8s.io/rayline-operator',
      'rolebinding.rbac.authorization.k8s.io/rayline-operator-leader-election',
      'clusterrolebinding.rbac.authorization.k8s.io/rayline-operator',
      'service/rayline-operator-metrics',
      'deployment.apps/rayline-operator',
    ]) {
      assert.match(result.stdout, new RegExp(`^${regexEscape(object)} \\w+ \\(server dry run\\)$`, 'm'));
    }
    const deployment = (await kustomize('config/default')).find((d) => d.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    assert.equal(deployment.metadata.namespace, systemNamespace);
    assert.deepEqual(container.args.slice(0, 2), ['operator', '--leader-elect']);
    assert.deepEqual(container.env[0], {
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    assert.deepEqual(
      container.ports.map((p: Manifest) => p.containerPort),
      [8080, 8081],
    );
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  });

  test('the operator pod of config/manager meets the restricted Pod Security level', async () => {
    const deployment = (await kustomize('config/default')).find((d) => d.kind === 'Deployment');
    await assertRestrictedPodAdmitted(deployment);
  });

  test('the operator ServiceAccount holds its permissions and may grant a head pod its autoscaling Role', async () => {
    await kubectlOk(['apply', '-k', at('config/rbac')]);
    await assertOperatorRbac('samples');
  });

  test('kubectl apply --dry-run=server accepts every sample, and config/samples lists them all', async () => {
    const files = await yamlFiles('config/samples');
    const kustomization = yaml.load(await readText('config/samples/kustomization.yaml')) as Manifest;
    assert.deepEqual(
      [...kustomization.resources].sort(),
      files.filter((f) => f !== 'kustomization.yaml'),
    );
    const result = await kubectlOk([
      'apply',
      '--dry-run=server',
      '-n',
      'samples',
      '-k',
      at('config/samples'),
    ]);
    for (const object of [
      'rayservice.rayline.dev/llm-service',
      'rayservice.rayline.dev/pipeline',
      'raycluster.rayline.dev/raycluster-gpu',
      'raycluster.rayline.dev/raycluster-autoscaler',
    ]) {
      assert.match(result.stdout, new RegExp(`^${regexEscape(object)} created \\(server dry run\\)$`, 'm'));
    }
  });

  test('the ported seed RayService keeps its GPU worker group and drops only what Rayline rejects', async () => {
    const llm = await sample('rayservice_llm.yaml');
    const config = yaml.load(llm.spec.serveConfigV2) as Manifest;
    const [app] = config.applications;
    assert.match(app.import_path, /^[^:\s]+\.ts:app$/);
    assert.equal(app.runtime_env.pip, undefined);
    const [deployment] = app.deployments;
    assert.deepEqual(deployment.ray_actor_options, { num_gpus: 1 });
    assert.deepEqual(deployment.autoscaling_config, { min_replicas: 1, max_replicas: 4 });
    assert.equal(deployment.num_replicas, undefined);
    // What the ported file would be with the two dropped lines back: rejected, with the reason.
    const original = structuredClone(config);
    original.applications[0].runtime_env.pip = ['vllm>=0.6.0', 'transformers'];
    original.applications[0].deployments[0].num_replicas = 2;
    const rejected = parseServeConfig(original);
    assert.equal(rejected.ok, false);
    const messages = JSON.stringify(!rejected.ok && rejected.issues);
    assert.match(messages, /runtime_env\.pip is not supported/);
    assert.match(messages, /num_replicas cannot be set together with autoscaling_config/);
    const worker = llm.spec.rayClusterConfig.workerGroupSpecs[0];
    assert.deepEqual(
      {
        group: worker.groupName,
        replicas: worker.replicas,
        min: worker.minReplicas,
        max: worker.maxReplicas,
      },
      { group: 'gpu-workers', replicas: 2, min: 1, max: 4 },
    );
    assert.equal(worker.template.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
    for (const container of [llm.spec.rayClusterConfig.headGroupSpec, worker].map(
      (g) => g.template.spec.containers[0],
    )) {
      assert.equal(container.image, 'rayline/rayline:0.1.0');
    }
  });

  test('the pipeline sample serves examples/pipeline/config.yaml from the image', async () => {
    const pipeline = await sample('rayservice_pipeline.yaml');
    const served = yaml.load(pipeline.spec.serveConfigV2) as Manifest;
    const example = yaml.load(await readText('examples/pipeline/config.yaml')) as Manifest;
    // The image keeps the repository's examples/ under /app (see the Dockerfile).
    const [app] = served.applications;
    assert.equal(app.runtime_env.working_dir, '/app/examples/pipeline');
    const { runtime_env: _runtimeEnv, ...rest } = app;
    assert.deepEqual([rest], example.applications);
    await readText(`${app.runtime_env.working_dir.replace(/^\/app\//, '')}/${app.import_path.split(':')[0]}`);
  });

  test('the GPU and autoscaling samples are shaped as KubeRay users write them', async () => {
    const gpu = await sample('raycluster_gpu.yaml');
    const gpuWorker = gpu.spec.workerGroupSpecs[0];
    assert.equal(gpuWorker.template.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
    const autoscaler = await sample('raycluster_autoscaler.yaml');
    assert.equal(autoscaler.spec.enableInTreeAutoscaling, true);
    assert.deepEqual(autoscaler.spec.autoscalerOptions, { idleTimeoutSeconds: 60, upscalingMode: 'Default' });
    const group = autoscaler.spec.workerGroupSpecs[0];
    assert.deepEqual([group.minReplicas, group.maxReplicas], [0, 4]);
  });
});

describe('CRD validation', () => {
  const cluster = (group: Record<string, unknown>): string =>
    JSON.stringify({
      apiVersion: 'rayline.dev/v1',
      kind: 'RayCluster',
      metadata: { name: 'invalid', namespace: 'samples' },
      spec: {
        headGroupSpec: {
          template: { spec: { containers: [{ name: 'head', image: 'rayline/rayline:0.1.0' }] } },
        },
        workerGroupSpecs: [
          {
            groupName: 'workers',
            template: { spec: { containers: [{ name: 'worker', image: 'rayline/rayline:0.1.0' }] } },
            ...group,
          },
        ],
      },
    });

  test('a worker group with replicas -1 is rejected, naming the field', async () => {
    const result = await env.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: cluster({ replicas: -1 }),
    });
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stderr, /spec\.workerGroupSpecs\[0\]\.replicas: Invalid value: -1/);
  });

  test('a worker group with minReplicas above maxReplicas is rejected, naming both', async () => {
    const result = await env.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: cluster({ minReplicas: 3, maxReplicas: 1 }),
    });
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stderr, /spec\.workerGroupSpecs\[0\][^\n]*minReplicas[^\n]*maxReplicas/);
  });

  test('the same group with minReplicas 1, maxReplicas 3 is accepted', async () => {
    await kubectlOk(['apply', '--dry-run=server', '-f', '-'], {
      input: cluster({ replicas: 2, minReplicas: 1, maxReplicas: 3 }),
    });
  });
});

describe('charts/rayline-operator (helm)', () => {
  test('helm lint passes', async () => {
    const result = await helmOk(['lint', at('charts/rayline-operator'), '--kube-version', kubeVersion]);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('helm template piped into kubectl apply --dry-run=server is accepted', async () => {
    const rendered = await helmOk(templateArgs());
    const result = await kubectlOk(['apply', '--dry-run=server', '-f', '-'], { input: rendered.stdout });
    for (const object of [
      'serviceaccount/rayline-operator',
      'clusterrole.rbac.authorization.k8s.io/rayline-operator',
      'clusterrolebinding.rbac.authorization.k8s.io/rayline-operator',
      'role.rbac.authorization.k8s.io/rayline-operator-leader-election',
      'rolebinding.rbac.authorization.k8s.io/rayline-operator-leader-election',
      'service/rayline-operator-metrics',
      'deployment.apps/rayline-operator',
    ]) {
      assert.match(result.stdout, new RegExp(`^${regexEscape(object)} \\w+ \\(server dry run\\)$`, 'm'));
    }
    const docs = loadAll(rendered.stdout);
    assert.equal(docs.filter((d) => d.kind === 'ServiceMonitor').length, 0);
    const deployment = docs.find((d) => d.kind === 'Deployment');
    assert.deepEqual(deployment.spec.template.spec.containers[0].args, [
      'operator',
      '--leader-elect',
      '--leader-election-id=rayline-operator',
      '--metrics-port=8080',
      '--health-port=8081',
      '--log-level=info',
    ]);
    assert.equal(deployment.spec.template.spec.containers[0].image, 'rayline/rayline:0.1.0');
    await assertRestrictedPodAdmitted(deployment);
  });

  test("the chart's ClusterRole grants what config/rbac's does", async () => {
    const chartRole = (await helmTemplate()).find((d) => d.kind === 'ClusterRole');
    const configRole = (await kustomize('config/rbac')).find((d) => d.kind === 'ClusterRole');
    assert.deepEqual(chartRole.rules, configRole.rules);
  });

  test('watchNamespaces: RoleBindings in each watched namespace instead of a ClusterRoleBinding', async () => {
    await kubectlOk(['create', 'namespace', 'team-a']);
    await kubectlOk(['create', 'namespace', 'team-b']);
    const rendered = await helmOk(
      templateArgs(['--set', 'watchNamespaces={team-a,team-b}', '--set', 'crds.install=false'], 'scoped'),
    );
    const docs = loadAll(rendered.stdout);
    assert.equal(docs.filter((d) => d.kind === 'ClusterRoleBinding').length, 0);
    const bindings = docs.filter((d) => d.kind === 'RoleBinding' && d.roleRef.kind === 'ClusterRole');
    assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ['team-a', 'team-b']);
    const deployment = docs.find((d) => d.kind === 'Deployment');
    assert.ok(deployment.spec.template.spec.containers[0].args.includes('--namespaces=team-a,team-b'));
    // Applied for real: the operator's account may then act in team-a, and nowhere else.
    await kubectlOk(['apply', '-f', '-'], { input: rendered.stdout });
    const account = `system:serviceaccount:${systemNamespace}:scoped-rayline-operator`;
    await waitFor(async () => (await canI(account, 'create', 'pods', 'team-a')) === 'yes', 'RBAC in team-a');
    assert.equal(await canI(account, 'create', 'pods', 'samples'), 'no');
  });

  test('the ServiceMonitor renders only when enabled', async () => {
    const docs = await helmTemplate(['--set', 'metrics.serviceMonitor.enabled=true']);
    const monitor = docs.find((d) => d.kind === 'ServiceMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    const service = docs.find((d) => d.kind === 'Service');
    assert.deepEqual(monitor.spec.selector.matchLabels, service.spec.selector);
    assert.equal(monitor.spec.endpoints[0].port, service.spec.ports[0].name);
  });

  test('more than one replica without leader election is refused', async () => {
    const result = await env.helm(
      templateArgs(['--set', 'replicaCount=2', '--set', 'leaderElection.enabled=false']),
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /replicaCount > 1 needs leaderElection\.enabled=true/);
  });
});

// ---- helpers -------------------------------------------------------------------------------------

function templateArgs(extra: string[] = [], release = 'rayline-operator'): string[] {
  return [
    'template',
    release,
    at('charts/rayline-operator'),
    '--namespace',
    systemNamespace,
    '--kube-version',
    kubeVersion,
    '--set',
    'metrics.serviceMonitor.enabled=false',
    ...extra,
  ];
}

async function helmTemplate(extra: string[] = []): Promise<Manifest[]> {
  return loadAll((await helmOk(templateArgs(extra))).stdout);
}

async function kustomize(dir: string): Promise<Manifest[]> {
  return loadAll((await kubectlOk(['kustomize', at(dir)])).stdout);
}

async function sample(file: string): Promise<Manifest> {
  return yaml.load(await readText(`config/samples/${file}`));
}

/**
 * Creates (dry run) a Pod from the Deployment's template in the operator's namespace, whose Pod
 * Security level is restricted; and, as a control, the same Pod run as root, which must be refused.
 */
async function assertRestrictedPodAdmitted(deployment: Manifest): Promise<void> {
  const pod = (spec: Manifest): string =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'operator-pod', namespace: systemNamespace },
      spec,
    });
  const spec = deployment.spec.template.spec;
  assert.equal(spec.securityContext.runAsNonRoot, true);
  assert.equal(spec.containers[0].securityContext.readOnlyRootFilesystem, true);
  await kubectlOk(['create', '--dry-run=server', '-f', '-'], { input: pod(spec) });
  const asRoot = structuredClone(spec);
  asRoot.securityContext.runAsNonRoot = false;
  asRoot.securityContext.runAsUser = 0;
  const refused = await env.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pod(asRoot) });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /violates PodSecurity "restricted/);
}

/**
 * The operator's ServiceAccount may do what it needs in `namespace`, and may create the Role it gives
 * a head pod for in-tree autoscaling: the API server refuses to let anyone grant permissions they do
 * not hold, which the control (a Role with a permission the operator lacks) shows.
 */
async function assertOperatorRbac(namespace: string): Promise<void> {
  // [verb, resource, subresource]
  const needed: [string, string, string?][] = [
    ...['get', 'list', 'watch', 'create', 'patch', 'delete'].flatMap((verb): [string, string][] => [
      [verb, 'rayclusters.rayline.dev'],
      [verb, 'rayservices.rayline.dev'],
      [verb, 'pods'],
    ]),
    ...['get', 'list', 'watch', 'create', 'patch'].map((verb): [string, string] => [verb, 'services']),
    ...['get', 'create'].flatMap((verb): [string, string][] => [
      [verb, 'secrets'],
      [verb, 'serviceaccounts'],
      [verb, 'roles.rbac.authorization.k8s.io'],
      [verb, 'rolebindings.rbac.authorization.k8s.io'],
      [verb, 'networkpolicies.networking.k8s.io'],
    ]),
    ...['get', 'patch'].flatMap((verb): [string, string, string][] => [
      [verb, 'rayclusters.rayline.dev', 'status'],
      [verb, 'rayservices.rayline.dev', 'status'],
    ]),
    ['create', 'events'],
    ['patch', 'events'],
  ];
  // The authorizer reads RBAC objects from a cache: wait until the binding is visible.
  await waitFor(
    async () => (await canI(operatorAccount, 'get', 'rayclusters.rayline.dev', namespace)) === 'yes',
    'the operator ClusterRoleBinding to take effect',
  );
  const answers = await Promise.all(
    needed.map(async ([verb, resource, subresource]) => {
      const answer = await canI(operatorAccount, verb, resource, namespace, subresource);
      return `${verb} ${resource}${subresource ? `/${subresource}` : ''}: ${answer}`;
    }),
  );
  assert.deepEqual(
    answers.filter((a) => !a.endsWith(': yes')),
    [],
  );
  assert.equal(await canI(operatorAccount, 'delete', 'nodes', ''), 'no');
  // Nothing beyond what the code uses: it cannot read every Secret in the cluster.
  assert.equal(await canI(operatorAccount, 'list', 'secrets', namespace), 'no');

  const headRole = (name: string, extraRules: Manifest[] = []): string =>
    JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        {
          apiGroups: ['rayline.dev'],
          resources: ['rayclusters'],
          resourceNames: ['demo'],
          verbs: ['get', 'patch'],
        },
        ...extraRules,
      ],
    });
  const as = ['--as', operatorAccount];
  await kubectlOk([...as, 'create', '--dry-run=server', '-f', '-'], { input: headRole('head-autoscaler') });
  const escalation = await env.kubectl([...as, 'create', '--dry-run=server', '-f', '-'], {
    input: headRole('too-much', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]),
  });
  assert.notEqual(escalation.code, 0);
  assert.match(escalation.stderr, /attempting to grant RBAC permissions not currently held/);
}

async function canI(
  user: string,
  verb: string,
  resource: string,
  namespace: string,
  subresource?: string,
): Promise<string> {
  const args = ['auth', 'can-i', verb, resource, '--as', user];
  if (subresource) args.push(`--subresource=${subresource}`);
  const result = await env.kubectl(namespace ? [...args, '-n', namespace] : args);
  // can-i exits 1 for "no"; anything else on stderr is a real failure.
  if (result.code !== 0 && result.stdout.trim() !== 'no') {
    throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  }
  return result.stdout.trim();
}

async function kubectlOk(args: string[], opts?: { input?: string }): Promise<CommandResult> {
  const result = await env.kubectl(args, opts);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result;
}

async function helmOk(args: string[]): Promise<CommandResult> {
  const result = await env.helm(args);
  assert.equal(result.code, 0, `helm ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function loadAll(text: string): Manifest[] {
  return yaml.loadAll(text).filter((doc) => doc !== null && doc !== undefined);
}

async function yamlFiles(dir: string): Promise<string[]> {
  return (await readdir(new URL(`${dir}/`, root))).filter((f) => /\.ya?ml$/.test(f)).sort();
}

function readText(file: string): Promise<string> {
  return readFile(new URL(file, root), 'utf8');
}

function readBytes(file: string): Promise<Buffer> {
  return readFile(new URL(file, root));
}

function regexEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
