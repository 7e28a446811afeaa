/** `/metrics` of a node: its own registry and every replica process it runs, aggregated; `/-/healthz`. */
import Fastify, { type FastifyInstance } from 'fastify';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { gateHttpServer, markAuthenticated, type PreAuthGate } from '../transport/preauth-gate.ts';
import type { ReplicaProcess } from './replica-process.ts';

export async function nodeMetrics(registry: Registry, replicas: Iterable<ReplicaProcess>): Promise<string> {
  const own = await registry.getMetricsAsJSON();
  const fromReplicas = await Promise.all([...replicas].map((p) => p.metrics()));
  const all = [own, ...fromReplicas.filter((m) => m.length > 0)] as Parameters<
    typeof AggregatorRegistry.aggregate
  >[0];
  return AggregatorRegistry.aggregate(all).metrics();
}

/**
 * Also answers `/-/healthz`: a worker pod's probes ask its metrics port. It stays healthy while the
 * head is away, since the worker keeps serving with its last routing tables.
 */
export function createMetricsServer(
  registry: Registry,
  text: () => Promise<string>,
  gate?: PreAuthGate,
): FastifyInstance {
  const server = Fastify({ logger: false });
  if (gate) {
    // No token here: a connection is bounded until its first request arrives whole.
    gateHttpServer(server.server, gate);
    server.server.on('request', markAuthenticated);
  }
  server.get('/-/healthz', async () => 'ok');
  server.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType);
    return text();
  });
  return server;
}
