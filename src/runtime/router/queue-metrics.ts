/** Publishes each router's waiting calls and submitted calls as Ray's handle metrics. */
import type { HandleMetrics } from '../../observability/metrics.ts';
import type { CallRouter } from './call-router.ts';

export function trackQueues(router: CallRouter, metrics: HandleMetrics, handleName: string): void {
  router.onRouterCreated = (r) => {
    const queued = metrics.queued.labels({
      deployment: r.deployment,
      application: r.app,
      handle: handleName,
    });
    queued.set(0);
    r.onQueueChange = (n) => queued.set(n);
    const requests = metrics.requests.labels({
      handle: handleName,
      deployment: r.deployment,
      route: '',
      application: r.app,
    });
    r.onSubmit = () => requests.inc();
  };
}
