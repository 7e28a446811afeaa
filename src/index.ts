/** The `rayline` package: the programming model for deployments and applications. */

export { BackPressureError, RaylineError } from './errors.ts';
export type { ActorOptions, AutoscalingOptions, DeploymentOptions } from './schema/options.ts';
export * from './serve/index.ts';
export { metrics } from './serve/metrics.ts';
