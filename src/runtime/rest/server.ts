/**
 * The REST API on the dashboard port (8265), in Ray's shapes: PUT applies a serve config
 * declaratively, GET reports every application, deployment and replica, DELETE removes everything.
 * With a token configured every call needs `Authorization: Bearer <token>`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { type ErrorCode, RaylineError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { type DocumentResult, parseJsonDocument, parseYamlDocument } from '../../schema/document.ts';
import { parseServeConfig, type ServeConfig } from '../../schema/serve-config.ts';
import { tokensEqual } from '../cluster/token.ts';
import type { ServeController } from '../controller/controller.ts';
import { gateHttpServer, markAuthenticated, type PreAuthGate } from '../transport/preauth-gate.ts';

export interface RestOptions {
  controller: ServeController;
  /**
   * Applies a validated config: plans the change, stores it and commits it, or throws having
   * changed nothing (the head checks what it cannot change while running).
   */
  apply(config: ServeConfig): void;
  log: Logger;
  /** The admin token; the replicas' credential is not it and opens nothing here. */
  token: string | undefined;
  /** Deletes every application (DELETE). */
  deleteAll(): void;
  /** Bounds connections that have not shown the token yet. */
  gate?: PreAuthGate;
}

/** The largest config body: a serve config is kilobytes; this leaves room for large `args`. */
export const REST_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  return tokensEqual(header.slice(7), token);
}

/** Fastify's statuses for what it refuses itself, as Rayline's codes. */
function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'RL_BAD_REQUEST';
    case 401:
      return 'RL_UNAUTHORIZED';
    case 404:
      return 'RL_NOT_FOUND';
    case 408:
      return 'RL_TIMEOUT';
    case 413:
      return 'RL_BODY_TOO_LARGE';
    case 415:
      return 'RL_UNSUPPORTED_MEDIA_TYPE';
    case 503:
      return 'RL_UNAVAILABLE';
    default:
      return 'RL_INTERNAL';
  }
}

function documentParser(parse: (text: string) => DocumentResult, what: string) {
  return (_req: unknown, text: string | Buffer, done: (error: Error | null, body?: unknown) => void) => {
    // An empty body is no body (a DELETE sent with a content-type); PUT says what it needs.
    if ((text as string).trim() === '') return done(null, undefined);
    const parsed = parse(text as string);
    if (parsed.ok) return done(null, parsed.value);
    const issues = parsed.issues;
    done(
      new RaylineError(
        'RL_CONFIG_INVALID',
        `body is not a valid ${what} document: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        { issues },
      ),
    );
  };
}

export function createRestServer(options: RestOptions): FastifyInstance {
  const { controller, log, token } = options;
  const server = Fastify({
    logger: false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: REST_BODY_LIMIT_BYTES,
  });
  if (options.gate) gateHttpServer(server.server, options.gate);
  // Bodies are parsed here, with bounds on depth and alias expansion and duplicate keys refused.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    documentParser(parseJsonDocument, 'JSON'),
  );
  // Config files are YAML: accept them as they are, as well as JSON.
  server.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    documentParser(parseYamlDocument, 'YAML'),
  );
  server.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const own = error instanceof RaylineError ? error : undefined;
    const status = own?.statusCode ?? error.statusCode ?? 500;
    const code = own?.code ?? codeOfStatus(status);
    if (status === 500) log.error({ err: error }, 'REST request failed');
    const message =
      status === 413
        ? `request body exceeds the REST API's limit of ${REST_BODY_LIMIT_BYTES} bytes`
        : status === 415
          ? `unsupported content-type '${_req.headers['content-type']}': send application/json or application/yaml`
          : error.message;
    reply.code(status).send({ error: code, code, message, ...(own?.issues ? { issues: own.issues } : {}) });
  });
  server.addHook('onRequest', async (req, reply) => {
    if (!token || tokenMatches(req.headers.authorization, token)) {
      markAuthenticated(req.raw);
      return;
    }
    // Whoever has not shown the token gets one answer per connection, then the connection closes.
    reply.header('connection', 'close');
    // Liveness needs no token: probes and `rayline start` wait on it.
    if (req.url === '/-/healthz') return;
    return reply.code(401).send({
      error: 'RL_UNAUTHORIZED',
      code: 'RL_UNAUTHORIZED',
      message: 'missing or wrong bearer token (Authorization: Bearer <token>)',
    });
  });
  server.get('/api/serve/applications/', async () => controller.details());
  server.put('/api/serve/applications/', async (req, reply) => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return reply.code(400).send({
        error: 'RL_CONFIG_INVALID',
        code: 'RL_CONFIG_INVALID',
        message: 'the body must be a serve config object (JSON, or YAML with content-type application/yaml)',
        issues: [{ path: '(root)', message: 'expected an object' }],
      });
    }
    const parsed = parseServeConfig(body);
    if (!parsed.ok) {
      log.warn({ issues: parsed.issues }, 'rejected invalid serve config');
      return reply.code(400).send({
        error: 'RL_CONFIG_INVALID',
        code: 'RL_CONFIG_INVALID',
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
