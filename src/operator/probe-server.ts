/**
 * The operator's two small HTTP servers: Prometheus metrics (8080) and the kubelet's probes (8081).
 * Ready means the caches have synced; a follower that waits for the lease is ready too, so a rollout
 * of the operator's Deployment does not stall on the replica that is not leading.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface ProbeServers {
  metricsUrl: string;
  healthUrl: string;
  close(): Promise<void>;
}

export async function startProbeServers(options: {
  registry: Registry;
  host: string;
  metricsPort: number;
  healthPort: number;
  ready: () => boolean;
  healthy: () => boolean;
}): Promise<ProbeServers> {
  const metrics = Fastify();
  metrics.get('/metrics', async (_req, reply) => {
    reply.header('content-type', options.registry.contentType);
    return options.registry.metrics();
  });
  const health = Fastify();
  health.get('/healthz', async (_req, reply) =>
    options.healthy() ? 'ok' : reply.code(500).send('unhealthy'),
  );
  health.get('/readyz', async (_req, reply) =>
    options.ready() ? 'ok' : reply.code(503).send('caches not synced'),
  );
  const listen = async (server: FastifyInstance, port: number) => {
    await server.listen({ host: options.host, port });
    const address = server.server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    return `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${actual}`;
  };
  const metricsUrl = await listen(metrics, options.metricsPort);
  const healthUrl = await listen(health, options.healthPort);
  return {
    metricsUrl,
    healthUrl,
    async close() {
      await Promise.all([metrics.close(), health.close()]);
    },
  };
}
