/**
 * Ray Serve's metric families, with its names and labels, so that existing dashboards work.
 * Counters end in `_total`; latencies are milliseconds with Ray's buckets.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const latencyBucketsMs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 60000, 600000];

export function proxyMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'ray_serve_num_http_requests_total',
      help: 'HTTP requests processed by the proxy',
      labelNames: ['route', 'method', 'application', 'status_code'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'ray_serve_num_http_error_requests_total',
      help: 'HTTP requests answered with an error status',
      labelNames: ['route', 'error_code', 'method', 'application'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'ray_serve_http_request_latency_ms',
      help: 'End-to-end latency of HTTP requests at the proxy, in milliseconds',
      labelNames: ['route', 'application', 'status_code'] as const,
      buckets: latencyBucketsMs,
      registers: [registry],
    }),
    ongoing: new Gauge({
      name: 'ray_serve_num_ongoing_http_requests',
      help: 'HTTP requests the proxy is processing now',
      labelNames: ['node_id'] as const,
      registers: [registry],
    }),
  };
}
export type ProxyMetrics = ReturnType<typeof proxyMetrics>;

/** Rayline's own: connections a listening port closed before they authenticated. */
export function connectionMetrics(registry: Registry) {
  return {
    preAuthRefused: new Counter({
      name: 'rayline_preauth_connections_refused_total',
      help: 'Connections closed before they authenticated: over the port or per-source limit, too many bytes, or too slow',
      labelNames: ['port', 'reason'] as const,
      registers: [registry],
    }),
  };
}
export type ConnectionMetrics = ReturnType<typeof connectionMetrics>;

export function handleMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'ray_serve_handle_request_counter_total',
      help: 'Requests sent through deployment handles and routers',
      labelNames: ['handle', 'deployment', 'route', 'application'] as const,
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'ray_serve_deployment_queued_queries',
      help: 'Requests waiting at a caller for a replica with capacity',
      labelNames: ['deployment', 'application', 'handle'] as const,
      registers: [registry],
    }),
  };
}
export type HandleMetrics = ReturnType<typeof handleMetrics>;

export function replicaMetrics(registry: Registry) {
  const labelNames = ['deployment', 'replica', 'application', 'route'] as const;
  return {
    requests: new Counter({
      name: 'ray_serve_deployment_request_counter_total',
      help: 'Requests processed by the replica',
      labelNames,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'ray_serve_deployment_error_counter_total',
      help: 'Requests that raised an exception in the replica',
      labelNames,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'ray_serve_deployment_processing_latency_ms',
      help: 'Time the replica spent processing a request, in milliseconds',
      labelNames,
      buckets: latencyBucketsMs,
      registers: [registry],
    }),
    processing: new Gauge({
      name: 'ray_serve_replica_processing_queries',
      help: 'Requests the replica is processing now',
      labelNames,
      registers: [registry],
    }),
  };
}
export type ReplicaMetrics = ReturnType<typeof replicaMetrics>;

export function controllerMetrics(registry: Registry) {
  const labelNames = ['deployment', 'replica', 'application'] as const;
  return {
    starts: new Counter({
      name: 'ray_serve_deployment_replica_starts_total',
      help: 'Replica starts, including restarts',
      labelNames,
      registers: [registry],
    }),
    healthy: new Gauge({
      name: 'ray_serve_deployment_replica_healthy',
      help: '1 when the replica is running and healthy, 0 otherwise',
      labelNames,
      registers: [registry],
    }),
    healthCheckLatency: new Histogram({
      name: 'ray_serve_health_check_latency_ms',
      help: 'Duration of replica health checks, in milliseconds',
      labelNames,
      buckets: latencyBucketsMs,
      registers: [registry],
    }),
    autoscalingTarget: new Gauge({
      name: 'ray_serve_autoscaling_target_replicas',
      help: 'The number of replicas the autoscaler is working towards',
      labelNames: ['deployment', 'application'] as const,
      registers: [registry],
    }),
    autoscalingDesired: new Gauge({
      name: 'ray_serve_autoscaling_desired_replicas',
      help: 'The number of replicas the load calls for now, before the scaling delays',
      labelNames: ['deployment', 'application'] as const,
      registers: [registry],
    }),
  };
}
export type ControllerMetrics = ReturnType<typeof controllerMetrics>;

/** The operator's controller metrics, with controller-runtime's names so its dashboards apply. */
export function operatorMetrics(registry: Registry) {
  return {
    reconciles: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Reconciles per controller and result (success, error, requeue_after)',
      labelNames: ['controller', 'result'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Reconciles that returned an error',
      labelNames: ['controller'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Time of one reconcile, in seconds',
      labelNames: ['controller'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Keys waiting in a controller work queue',
      labelNames: ['name'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'rayline_operator_leader',
      help: '1 while this operator replica holds the leader lease',
      registers: [registry],
    }),
  };
}
export type OperatorMetrics = ReturnType<typeof operatorMetrics>;
