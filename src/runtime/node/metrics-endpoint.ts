/** `/metrics` of a node: its own registry and every replica process it runs, aggregated. */
import Fastify, { type FastifyInstance } from 'fastify';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ReplicaProcess } from './replica-process.ts';

export async function nodeMetrics(registry: Registry, replicas: Iterable<ReplicaProcess>): Promise<string> {
  const own = await registry.getMetricsAsJSON();
  const fromReplicas = await Promise.all([...replicas].map((p) => p.metrics()));
  const all = [own, ...fromReplicas.filter((m) => m.length > 0)] as Parameters<
    typeof AggregatorRegistry.aggregate
  >[0];
  return AggregatorRegistry.aggregate(all).metrics();
}

export function createMetricsServer(registry: Registry, text: () => Promise<string>): FastifyInstance {
  const server = Fastify({ logger: false });
  server.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType);
    return text();
  });
  return server;
}
