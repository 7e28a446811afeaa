/** An application as the controller tracks it, and how its status and REST details derive from it. */
import type { ApplicationConfig } from '../../schema/serve-config.ts';
import type { DeploymentState } from './deployment-state.ts';
import type { ApplicationDetails, ApplicationStatus } from './status.ts';

export interface ApplicationState {
  name: string;
  config: ApplicationConfig;
  /** `config` as JSON, computed once: what a new config is compared with. */
  configKey: string;
  /** Increments on every (re)deploy so that a slow build of an older config is discarded. */
  generation: number;
  building: boolean;
  buildError: string;
  ingress: string | undefined;
  deployments: Map<string, DeploymentState>;
  /** Deleted deployments whose replicas are still draining, replaced by a new one of the same name. */
  draining: DeploymentState[];
  deleting: boolean;
  lastDeployedTimeS: number;
}

/** Ray's application status, derived from the build and the deployments' statuses. */
export function applicationStatus(app: ApplicationState): { status: ApplicationStatus; message: string } {
  if (app.deleting) return { status: 'DELETING', message: '' };
  if (app.buildError) return { status: 'DEPLOY_FAILED', message: app.buildError };
  if (app.building) return { status: 'DEPLOYING', message: '' };
  const deployments = [...app.deployments.values()].filter((d) => !d.deleting);
  const failed = deployments.filter((d) => d.status === 'DEPLOY_FAILED');
  if (failed.length > 0) {
    return {
      status: 'DEPLOY_FAILED',
      message: failed.map((d) => `deployment '${d.name}': ${d.message}`).join('; '),
    };
  }
  const unhealthy = deployments.filter((d) => d.status === 'UNHEALTHY');
  if (unhealthy.length > 0) {
    return {
      status: 'UNHEALTHY',
      message: unhealthy.map((d) => `deployment '${d.name}': ${d.message}`).join('; '),
    };
  }
  // Scaling up or down is business as usual for the application (as in Ray).
  if (deployments.every((d) => d.status === 'HEALTHY' || d.statusTrigger === 'AUTOSCALING')) {
    return { status: 'RUNNING', message: '' };
  }
  return { status: 'DEPLOYING', message: '' };
}

export function applicationDetails(app: ApplicationState): ApplicationDetails {
  const { status, message } = applicationStatus(app);
  return {
    name: app.name,
    route_prefix: app.config.route_prefix,
    docs_path: null,
    status,
    message,
    last_deployed_time_s: app.lastDeployedTimeS,
    deployed_app_config: app.config as unknown as Record<string, unknown>,
    source: 'declarative',
    deployments: Object.fromEntries([...app.deployments.values()].map((d) => [d.name, d.details()])),
  };
}
