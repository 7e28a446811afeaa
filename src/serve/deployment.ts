/**
 * `deployment()` turns a class into a Deployment; `.bind()` builds an application graph whose
 * bound children reach the parent's constructor as typed handles.
 */
import { RaylineError } from '../errors.ts';
import type { DeploymentOptionsInput } from '../schema/deployment-config.ts';
import { codeOptionsToSnake, type DeploymentOptions } from '../schema/options.ts';
import type { DeploymentHandle } from './handle.ts';

// biome-ignore lint/suspicious/noExplicitAny: the widest constructor type, as in TypeScript's own lib
export type Constructor<T extends object = object> = abstract new (...args: any) => T;

/** Bound deployments may stand where the constructor expects their handles. */
export type BindArg<A> =
  A extends DeploymentHandle<infer X>
    ? Application<X> | A
    : A extends readonly unknown[]
      ? { [K in keyof A]: BindArg<A[K]> }
      : A extends Record<string, unknown>
        ? { [K in keyof A]: BindArg<A[K]> }
        : A;

export type BindArgs<A extends readonly unknown[]> = { [K in keyof A]: BindArg<A[K]> };

const decoratorOptions = Symbol.for('rayline.deployment.options');

export class Deployment<T extends object = object, A extends readonly unknown[] = readonly unknown[]> {
  readonly name: string;
  readonly cls: Constructor<T>;
  /** Validated options from code, in the config's snake_case. */
  readonly config: DeploymentOptionsInput;
  readonly #options: DeploymentOptions;

  constructor(cls: Constructor<T>, options: DeploymentOptions = {}) {
    if (typeof cls !== 'function') {
      throw new RaylineError('RL_CONFIG_INVALID', `deployment() expects a class, got ${typeof cls}`);
    }
    this.cls = cls;
    this.name = options.name ?? cls.name;
    if (!this.name)
      throw new RaylineError('RL_CONFIG_INVALID', 'deployment() of an anonymous class needs options.name');
    this.#options = options;
    this.config = codeOptionsToSnake(options, `deployment '${this.name}'`);
  }

  /** A variant of this deployment with some options changed. */
  options(overrides: DeploymentOptions): Deployment<T, A> {
    return new Deployment<T, A>(this.cls, { ...this.#options, ...overrides });
  }

  /** Binds constructor arguments; bound deployments among them arrive as handles. */
  bind(...args: BindArgs<A>): Application<T> {
    return new Application<T>(this as unknown as Deployment, args as unknown[]);
  }
}

/** A deployment bound to its constructor arguments: a node of an application graph, and its root. */
export class Application<T = unknown> {
  readonly deployment: Deployment;
  readonly args: readonly unknown[];
  declare readonly __instance?: T;

  constructor(deployment: Deployment, args: readonly unknown[]) {
    this.deployment = deployment;
    this.args = args;
  }
}

type DeploymentOf<C extends Constructor> = Deployment<InstanceType<C>, ConstructorParameters<C>>;

interface DeploymentDecorator {
  /** As a class decorator: `@deployment({ ... }) class Model {}`. */
  <C extends Constructor>(cls: C, context: ClassDecoratorContext<C>): void;
  /** As a function: `deployment({ ... })(Model)`. */
  <C extends Constructor>(cls: C): DeploymentOf<C>;
}

function isDecoratorContext(value: unknown): value is ClassDecoratorContext {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'class';
}

/**
 * Declares a deployment. Forms:
 * - `deployment(Model, options?)` returns a Deployment;
 * - `deployment(options)(Model)` returns a Deployment;
 * - `@deployment(options) class Model {}` records the options on the class; `deployment(Model)` or
 *   `bind(Model, ...)` then builds with them.
 */
export function deployment<C extends Constructor>(cls: C, options?: DeploymentOptions): DeploymentOf<C>;
export function deployment<C extends Constructor>(cls: C, context: ClassDecoratorContext<C>): void;
export function deployment(options?: DeploymentOptions): DeploymentDecorator;
export function deployment(
  first?: Constructor | DeploymentOptions,
  second?: DeploymentOptions | ClassDecoratorContext,
): unknown {
  if (typeof first === 'function') {
    if (isDecoratorContext(second)) {
      recordOptions(first, {});
      return undefined;
    }
    // Own property only: a subclass does not inherit its parent's @deployment options (or name).
    const recorded = Object.hasOwn(first, decoratorOptions)
      ? (first as unknown as Record<symbol, DeploymentOptions>)[decoratorOptions]
      : undefined;
    return new Deployment(first, { ...recorded, ...second });
  }
  const options = first ?? {};
  codeOptionsToSnake(options, 'deployment options'); // fail at the decorator, not at first use
  return (cls: Constructor, context?: ClassDecoratorContext) => {
    if (isDecoratorContext(context)) {
      recordOptions(cls, options);
      return undefined;
    }
    return new Deployment(cls, options);
  };
}

function recordOptions(cls: Constructor, options: DeploymentOptions): void {
  Object.defineProperty(cls, decoratorOptions, { value: options, enumerable: false });
}

/** Binds a deployment or a class declared with `@deployment`. */
export function bind<C extends Constructor>(
  target: C | DeploymentOf<C>,
  ...args: BindArgs<ConstructorParameters<C>>
): Application<InstanceType<C>> {
  const d = target instanceof Deployment ? target : deployment(target as C);
  return (d as DeploymentOf<C>).bind(...args);
}
