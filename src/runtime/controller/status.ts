/** Status names and the REST response shapes, as Ray Serve spells them. */

export type ApplicationStatus =
  | 'NOT_STARTED'
  | 'DEPLOYING'
  | 'DEPLOY_FAILED'
  | 'RUNNING'
  | 'UNHEALTHY'
  | 'DELETING';
export type DeploymentStatus =
  | 'UPDATING'
  | 'HEALTHY'
  | 'UNHEALTHY'
  | 'DEPLOY_FAILED'
  | 'UPSCALING'
  | 'DOWNSCALING';
export type DeploymentStatusTrigger =
  | 'UNSPECIFIED'
  | 'CONFIG_UPDATE_STARTED'
  | 'CONFIG_UPDATE_COMPLETED'
  | 'UPSCALE_COMPLETED'
  | 'DOWNSCALE_COMPLETED'
  | 'AUTOSCALING'
  | 'REPLICA_STARTUP_FAILED'
  | 'HEALTH_CHECK_FAILED'
  | 'INTERNAL_ERROR'
  | 'DELETING';
export type ReplicaState = 'STARTING' | 'UPDATING' | 'RECOVERING' | 'RUNNING' | 'STOPPING';

export interface ReplicaDetails {
  replica_id: string;
  state: ReplicaState;
  pid: number | null;
  actor_name: string;
  node_id: string;
  node_ip: string;
  start_time_s: number;
}

export interface DeploymentDetails {
  name: string;
  status: DeploymentStatus;
  status_trigger: DeploymentStatusTrigger;
  message: string;
  deployment_config: Record<string, unknown>;
  target_num_replicas: number;
  required_resources: Record<string, number>;
  replicas: ReplicaDetails[];
}

export interface ApplicationDetails {
  name: string;
  route_prefix: string | null;
  docs_path: null;
  status: ApplicationStatus;
  message: string;
  last_deployed_time_s: number;
  deployed_app_config: Record<string, unknown> | null;
  source: 'declarative' | 'imperative';
  deployments: Record<string, DeploymentDetails>;
}

export interface ServeInstanceDetails {
  controller_info: {
    node_id: string;
    node_ip: string;
    actor_id: string;
    actor_name: string;
    worker_id: string;
    log_file_path: null;
  };
  proxy_location: string;
  http_options: Record<string, unknown>;
  grpc_options: Record<string, unknown>;
  proxies: Record<
    string,
    {
      node_id: string;
      node_ip: string;
      actor_id: string;
      actor_name: string;
      status: 'STARTING' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
    }
  >;
  deploy_mode: 'MULTI_APP';
  applications: Record<string, ApplicationDetails>;
  target_capacity: number | null;
}
