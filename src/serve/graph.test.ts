import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Application, deployment } from './deployment.ts';
import { constructorArgs, type GraphNode, walkApplication } from './graph.ts';
import type { DeploymentHandle } from './handle.ts';

class Preprocessor {
  run(text: string): string {
    return text.trim();
  }
}

class Model {
  predict(text: string): number {
    return text.length;
  }
}

// The constructors keep their arguments: the types tell bind() what may be passed.
class Ingress {
  readonly args: unknown[];
  constructor(pre: DeploymentHandle<Preprocessor>, model: DeploymentHandle<Model>) {
    this.args = [pre, model];
  }
}

class Ensemble {
  readonly args: unknown[];
  constructor(models: DeploymentHandle<Model>[], threshold: number) {
    this.args = [models, threshold];
  }
}

class Nested {
  readonly args: unknown[];
  constructor(options: {
    models: DeploymentHandle<Model>[];
    extra: { pre: DeploymentHandle<Preprocessor> };
    label: string;
  }) {
    this.args = [options];
  }
}

class Pipeline {
  readonly args: unknown[];
  constructor(first: DeploymentHandle<Ensemble>, second: DeploymentHandle<Ensemble>) {
    this.args = [first, second];
  }
}

const pre = deployment(Preprocessor);
const model = deployment(Model);

const summary = (nodes: GraphNode[]) => nodes.map((n) => [n.name, n.isIngress]);

test('a single deployment is its own ingress', () => {
  const app = model.bind();
  const nodes = walkApplication(app);
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0].name, 'Model');
  assert.equal(nodes[0].isIngress, true);
  assert.equal(nodes[0].node, app);
  assert.equal(nodes[0].deployment, model);
});

test('every bound deployment appears once, named after its deployment, the ingress first', () => {
  const preNode = pre.bind();
  const modelNode = model.bind();
  const app = deployment(Ingress).bind(preNode, modelNode);
  const nodes = walkApplication(app);
  assert.deepEqual(summary(nodes), [
    ['Ingress', true],
    ['Preprocessor', false],
    ['Model', false],
  ]);
  assert.equal(nodes[1].node, preNode);
  assert.equal(nodes[2].node, modelNode);
  assert.equal(nodes[2].deployment, model);
});

test('names come from options({ name }) when given', () => {
  const app = deployment(Ingress, { name: 'Front' }).bind(
    pre.options({ name: 'Clean' }).bind(),
    model.bind(),
  );
  assert.deepEqual(
    walkApplication(app).map((n) => n.name),
    ['Front', 'Clean', 'Model'],
  );
});

test('distinct bindings of one deployment get unique names: Name, Name_1, Name_2', () => {
  const app = deployment(Ensemble).bind([model.bind(), model.bind(), model.bind()], 0.5);
  assert.deepEqual(summary(walkApplication(app)), [
    ['Ensemble', true],
    ['Model', false],
    ['Model_1', false],
    ['Model_2', false],
  ]);
});

test('a generated suffix skips a name that is already taken', () => {
  const app = deployment(Ensemble).bind(
    [model.options({ name: 'Model_1' }).bind(), model.bind(), model.bind()],
    1,
  );
  assert.deepEqual(
    walkApplication(app).map((n) => n.name),
    ['Ensemble', 'Model_1', 'Model', 'Model_2'],
  );
});

test('the same bound node used twice is one deployment', () => {
  const shared = model.bind();
  const ensemble = deployment(Ensemble).bind([shared, shared], 0.5);
  const nodes = walkApplication(ensemble);
  assert.deepEqual(summary(nodes), [
    ['Ensemble', true],
    ['Model', false],
  ]);

  // A diamond: two parents share one child.
  const left = deployment(Ensemble).bind([shared], 1);
  const right = deployment(Ensemble).bind([shared], 2);
  const diamond = walkApplication(deployment(Pipeline).bind(left, right));
  assert.deepEqual(
    diamond.map((n) => n.name),
    ['Pipeline', 'Ensemble', 'Model', 'Ensemble_1'],
  );
  assert.equal(diamond.filter((n) => n.node === shared).length, 1);
});

test('bound children nested in arrays and plain objects are found', () => {
  const m1 = model.bind();
  const m2 = model.bind();
  const p = pre.bind();
  const app = deployment(Nested).bind({ models: [m1, m2], extra: { pre: p }, label: 'x' });
  const nodes = walkApplication(app);
  assert.deepEqual(
    nodes.map((n) => n.name),
    ['Nested', 'Model', 'Model_1', 'Preprocessor'],
  );
  assert.deepEqual(
    nodes.map((n) => n.node),
    [app, m1, m2, p],
  );
});

test('constructorArgs replaces bound children with handles, at any depth, and keeps other values', () => {
  const m1 = model.bind();
  const m2 = model.bind();
  const p = pre.bind();
  const app = deployment(Nested).bind({ models: [m1, m2, m1], extra: { pre: p }, label: 'x' });
  const nodes = walkApplication(app);
  const asked: string[] = [];
  const args = constructorArgs(app, nodes, (name) => {
    asked.push(name);
    return { handle: name };
  });
  assert.deepEqual(args, [
    {
      models: [{ handle: 'Model' }, { handle: 'Model_1' }, { handle: 'Model' }],
      extra: { pre: { handle: 'Preprocessor' } },
      label: 'x',
    },
  ]);
  assert.deepEqual(asked, ['Model', 'Model_1', 'Model', 'Preprocessor']);
  // The bound arguments themselves are untouched.
  assert.deepEqual((app.args[0] as { models: Application[] }).models, [m1, m2, m1]);
});

test('constructorArgs passes plain values through and resolves a child node of the graph', () => {
  const shared = model.bind();
  const ensemble = deployment(Ensemble).bind([shared, shared], 0.25);
  const nodes = walkApplication(ensemble);
  assert.deepEqual(
    constructorArgs(ensemble, nodes, (name) => `handle:${name}`),
    [['handle:Model', 'handle:Model'], 0.25],
  );
  assert.deepEqual(
    constructorArgs(shared, nodes, () => assert.fail('a leaf has no children')),
    [],
  );

  class Settings {
    readonly depth = 3;
  }
  const settings = new Settings();
  const date = new Date(0);
  const odd = deployment(Ensemble).bind(
    [model.bind()],
    // Only arrays and plain objects are rebuilt; other values arrive as the same object.
    settings as unknown as number,
  );
  const oddArgs = constructorArgs(odd, walkApplication(odd), (name) => name);
  assert.equal(oddArgs[1], settings);
  const withDate = deployment(Ensemble).bind([], date as unknown as number);
  assert.equal(constructorArgs(withDate, walkApplication(withDate), (name) => name)[1], date);
});

test('constructorArgs hands each child the name walkApplication gave it', () => {
  const first = deployment(Ensemble).bind([model.bind()], 1);
  const second = deployment(Ensemble).bind([model.bind()], 2);
  const app = deployment(Pipeline).bind(first, second);
  const nodes = walkApplication(app);
  assert.deepEqual(
    nodes.map((n) => n.name),
    ['Pipeline', 'Ensemble', 'Model', 'Ensemble_1', 'Model_1'],
  );
  assert.deepEqual(
    constructorArgs(app, nodes, (name) => name),
    ['Ensemble', 'Ensemble_1'],
  );
  assert.deepEqual(
    constructorArgs(second, nodes, (name) => name),
    [['Model_1'], 2],
  );
});
