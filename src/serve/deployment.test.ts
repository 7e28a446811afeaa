import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaylineError } from '../errors.ts';
import type { DeploymentOptions } from '../schema/options.ts';
import { Application, bind, Deployment, deployment } from './deployment.ts';
import type { DeploymentHandle } from './handle.ts';

/**
 * Applies a class decorator as `@decorator class X {}` would (TC39 decorators; Node runs TypeScript by
 * stripping types and cannot parse decorator syntax itself).
 */
function decorateClass<C extends abstract new (...args: never[]) => object>(
  cls: C,
  decorator: (cls: C, context: ClassDecoratorContext<C>) => unknown,
): C {
  const context = {
    kind: 'class',
    name: cls.name,
    addInitializer() {},
    metadata: {},
  } as ClassDecoratorContext<C>;
  const replaced = decorator(cls, context);
  assert.equal(replaced, undefined, 'the deployment decorator keeps the class itself');
  return cls;
}

function assertConfigInvalid(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof RaylineError, `expected a RaylineError, got ${String(error)}`);
    assert.equal(error.code, 'RL_CONFIG_INVALID');
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), error.message);
    return true;
  });
}

class Model {
  predict(x: number): number {
    return x * 2;
  }
}

class Ingress {
  readonly model: DeploymentHandle<Model>;
  readonly greeting: string;
  constructor(model: DeploymentHandle<Model>, greeting: string) {
    this.model = model;
    this.greeting = greeting;
  }
}

test('deployment(Class, options) declares a deployment named after the class', () => {
  const d = deployment(Model, { numReplicas: 2, rayActorOptions: { numGpus: 1 } });
  assert.ok(d instanceof Deployment);
  assert.equal(d.name, 'Model');
  assert.equal(d.cls, Model);
  assert.deepEqual(d.config, { num_replicas: 2, ray_actor_options: { num_gpus: 1 } });
});

test('deployment(Class) without options has empty code options', () => {
  const d = deployment(Model);
  assert.equal(d.name, 'Model');
  assert.deepEqual(d.config, {});
});

test('options.name overrides the class name', () => {
  const d = deployment(Model, { name: 'Doubler' });
  assert.equal(d.name, 'Doubler');
  assert.equal(d.config.name, 'Doubler');
});

test('curried form: deployment(options)(Class)', () => {
  const declare = deployment({ maxOngoingRequests: 8 });
  const d = declare(Model);
  assert.ok(d instanceof Deployment);
  assert.equal(d.name, 'Model');
  assert.deepEqual(d.config, { max_ongoing_requests: 8 });
  // The same options can declare several classes.
  const other = declare(Ingress);
  assert.equal(other.name, 'Ingress');
  assert.deepEqual(other.config, { max_ongoing_requests: 8 });
});

test('decorator form: @deployment(options) records the options; deployment(Class) and bind(Class) use them', () => {
  class Decorated {
    run(): string {
      return 'ok';
    }
  }
  decorateClass(Decorated, deployment({ numReplicas: 3, userConfig: { threshold: 0.5 } }));
  assert.equal(
    Object.keys(Decorated).length,
    0,
    'the recorded options are not an enumerable property of the class',
  );

  const d = deployment(Decorated);
  assert.equal(d.name, 'Decorated');
  assert.deepEqual(d.config, { num_replicas: 3, user_config: { threshold: 0.5 } });

  const app = bind(Decorated);
  assert.ok(app instanceof Application);
  assert.equal(app.deployment.name, 'Decorated');
  assert.deepEqual(app.deployment.config, { num_replicas: 3, user_config: { threshold: 0.5 } });
  assert.deepEqual(app.args, []);

  // Options given at deployment() are laid over the recorded ones, field by field.
  const tuned = deployment(Decorated, { numReplicas: 5, name: 'Tuned' });
  assert.equal(tuned.name, 'Tuned');
  assert.deepEqual(tuned.config, { num_replicas: 5, user_config: { threshold: 0.5 }, name: 'Tuned' });
});

test('decorator form with a name: the recorded name is used', () => {
  class Worker {}
  decorateClass(Worker, deployment({ name: 'Named' }));
  assert.equal(deployment(Worker).name, 'Named');
  assert.equal(bind(Worker).deployment.name, 'Named');
});

test('bare decorator form: @deployment without options', () => {
  class Plain {}
  decorateClass(Plain, deployment);
  const d = deployment(Plain);
  assert.equal(d.name, 'Plain');
  assert.deepEqual(d.config, {});
});

test('each deployment(Class) of a decorated class builds a fresh Deployment from the recorded options', () => {
  class Counted {}
  decorateClass(Counted, deployment({ numReplicas: 2 }));
  const a = deployment(Counted);
  const b = deployment(Counted);
  assert.notEqual(a, b);
  assert.deepEqual(a.config, b.config);
});

test('.options() derives a variant and leaves the original unchanged', () => {
  const original = deployment(Model, { numReplicas: 2, maxOngoingRequests: 4 });
  const variant = original.options({ maxOngoingRequests: 16, name: 'BigModel' });
  assert.notEqual(variant, original);
  assert.ok(variant instanceof Deployment);
  assert.equal(variant.cls, Model);
  assert.equal(variant.name, 'BigModel');
  assert.deepEqual(variant.config, { num_replicas: 2, max_ongoing_requests: 16, name: 'BigModel' });

  assert.equal(original.name, 'Model');
  assert.deepEqual(original.config, { num_replicas: 2, max_ongoing_requests: 4 });

  // Chained variants build on the variant, not the original.
  const again = variant.options({ numReplicas: 1 });
  assert.equal(again.name, 'BigModel');
  assert.deepEqual(again.config, { num_replicas: 1, max_ongoing_requests: 16, name: 'BigModel' });
  assert.deepEqual(variant.config, { num_replicas: 2, max_ongoing_requests: 16, name: 'BigModel' });
});

test('.options() replaces nested options whole', () => {
  const original = deployment(Model, { rayActorOptions: { numCpus: 2, memory: 100 } });
  const variant = original.options({ rayActorOptions: { numGpus: 1 } });
  assert.deepEqual(variant.config.ray_actor_options, { num_gpus: 1 });
  assert.deepEqual(original.config.ray_actor_options, { num_cpus: 2, memory: 100 });
});

test('.bind() records the constructor arguments, bound deployments included', () => {
  const model = deployment(Model).bind();
  const app = deployment(Ingress).bind(model, 'hello');
  assert.ok(app instanceof Application);
  assert.equal(app.deployment.name, 'Ingress');
  assert.deepEqual(app.args, [model, 'hello']);
  assert.equal(app.args[0], model);

  // bind() accepts a Deployment as well as a class.
  const viaBind = bind(deployment(Ingress, { name: 'Front' }), model, 'hi');
  assert.equal(viaBind.deployment.name, 'Front');
  assert.deepEqual(viaBind.args, [model, 'hi']);

  const undecorated = bind(Model);
  assert.equal(undecorated.deployment.name, 'Model');
  assert.deepEqual(undecorated.deployment.config, {});
});

test('invalid options throw RL_CONFIG_INVALID at declaration, naming the camelCase option', () => {
  assertConfigInvalid(
    () => deployment(Model, { maxOngoingRequests: 0 }),
    "deployment 'Model'",
    'maxOngoingRequests',
  );
  assertConfigInvalid(
    () => deployment(Model, { name: 'M2', autoscalingConfig: { minReplicas: 4, maxReplicas: 2 } }),
    "deployment 'M2'",
    'autoscalingConfig.minReplicas',
  );
  // Curried and decorator forms fail when the options are given, before any class.
  assertConfigInvalid(() => deployment({ numReplicas: -1 }), 'numReplicas');
  assertConfigInvalid(() => deployment({ typoOption: 1 } as DeploymentOptions), 'typoOption: unknown field');
  // .options() validates the variant.
  assertConfigInvalid(() => deployment(Model).options({ maxQueuedRequests: 0 }), 'maxQueuedRequests');
  // Options given together with recorded decorator options are validated too.
  class Recorded {}
  decorateClass(Recorded, deployment({ numReplicas: 2 }));
  assertConfigInvalid(
    () => deployment(Recorded, { autoscalingConfig: { maxReplicas: 3 } }),
    'numReplicas: num_replicas cannot be set together with autoscaling_config',
  );
});

test('the error carries the issues with camelCase paths', () => {
  try {
    deployment(Model, { maxOngoingRequests: 0, rayActorOptions: { numCpus: -1 } });
    assert.fail('expected a throw');
  } catch (error) {
    assert.ok(error instanceof RaylineError);
    assert.deepEqual(error.issues?.map((i) => i.path).sort(), [
      'maxOngoingRequests',
      'rayActorOptions.numCpus',
    ]);
  }
});

test('an anonymous class needs options.name', () => {
  assertConfigInvalid(() => deployment(class {}), 'anonymous class needs options.name');
  assert.equal(deployment(class {}, { name: 'Anon' }).name, 'Anon');
});

test('something other than a class is refused', () => {
  assertConfigInvalid(
    () => new Deployment('Model' as unknown as typeof Model),
    'deployment() expects a class, got string',
  );
});
