/** The `rayline` package: the programming model for deployments and applications. */
export * from './serve/index.ts';
export { BackPressureError, RaylineError } from './errors.ts';
export type { DeploymentOptions, AutoscalingOptions, ActorOptions } from './schema/options.ts';
