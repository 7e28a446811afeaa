/**
 * The REST API on the dashboard port (8265), in Ray's shapes: PUT applies a serve config
 * declaratively, GET reports every application, deployment and replica, DELETE removes everything.
 * With a token configured every call needs `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import yaml from 'js-yaml';
import type { Logger } from '../../observability/logger.ts';
import { parseServeConfig, type ServeConfig } from '../../schema/serve-config.ts';
import type { ServeController } from '../controller/controller.ts';

export interface RestOptions {
  controller: ServeController;
  /** Applies a validated config (the head checks what it cannot change while running). */
  apply(config: ServeConfig): void;
  log: Logger;
  token: string | undefined;
  /** Deletes every application (DELETE). */
  deleteAll(): void;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function createRestServer(options: RestOptions): FastifyInstance {
  const { controller, log, token } = options;
  const server = Fastify({
    logger: false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 16 * 1024 * 1024,
  });
  // Config files are YAML: accept them as they are, as well as JSON.
  server.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, text, done) => {
      try {
        done(null, yaml.load(text as string));
      } catch (error) {
        done(
          Object.assign(new Error(`body is not valid YAML: ${(error as Error).message}`), {
            statusCode: 400,
          }),
          undefined,
        );
      }
    },
  );
  server.setErrorHandler((error: Error & { statusCode?: number }, _req, reply) => {
    const status = error.statusCode ?? 500;
    reply
      .code(status)
      .send({ error: status === 400 ? 'RL_CONFIG_INVALID' : 'RL_INTERNAL', message: error.message });
  });
  if (token) {
    server.addHook('onRequest', async (req, reply) => {
      // Liveness needs no token: probes and `rayline start` wait on it.
      if (req.url === '/-/healthz') return;
      if (!tokenMatches(req.headers.authorization, token)) {
        reply.code(401).send({
          error: 'RL_UNAUTHORIZED',
          message: 'missing or wrong bearer token (Authorization: Bearer <token>)',
        });
      }
    });
  }
  server.get('/api/serve/applications/', async () => controller.details());
  server.put('/api/serve/applications/', async (req, reply) => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return reply.code(400).send({
        error: 'RL_CONFIG_INVALID',
        message: 'the body must be a serve config object (JSON, or YAML with content-type application/yaml)',
        issues: [{ path: '(root)', message: 'expected an object' }],
      });
    }
    const parsed = parseServeConfig(body);
    if (!parsed.ok) {
      log.warn({ issues: parsed.issues }, 'rejected invalid serve config');
      return reply.code(400).send({
        error: 'RL_CONFIG_INVALID',
        message: `invalid serve config: ${parsed.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        issues: parsed.issues,
      });
    }
    options.apply(parsed.value);
    return {};
  });
  server.delete('/api/serve/applications/', async () => {
    options.deleteAll();
    return {};
  });
  server.get('/api/version', async () => ({ version: '1', ray_version: 'rayline', ray_commit: 'rayline' }));
  server.get('/-/healthz', async () => 'success');
  return server;
}
