/**
 * Starts a real head (controller, proxy, REST API, metrics) in the test process on ephemeral ports,
 * with real replica processes. Replica logs are kept in memory for assertions and failure reports.
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { ApplicationDetails, ApplicationStatus } from '../src/runtime/controller/status.ts';
import { Head, type HeadOptions } from '../src/runtime/head.ts';
import { ServeRestClient } from '../src/runtime/rest/client.ts';
import { type HttpOptions, parseServeConfig, type ServeConfigInput } from '../src/schema/serve-config.ts';

export const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface TestHead {
  head: Head;
  http: string;
  rest: ServeRestClient;
  metricsUrl: string;
  logs: string[];
  deploy(config: ServeConfigInput): Promise<void>;
  waitForApp(name: string, statuses: ApplicationStatus[], timeoutMs?: number): Promise<ApplicationDetails>;
  stop(): Promise<void>;
}

export async function startTestHead(
  options: { http?: Partial<HttpOptions>; token?: string; head?: Partial<HeadOptions> } = {},
): Promise<TestHead> {
  const logs: string[] = [];
  const output = new Writable({
    write(chunk, _enc, done) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      if (logs.length > 5000) logs.splice(0, logs.length - 5000);
      done();
    },
  });
  const log = pino({ level: process.env.RAYLINE_TEST_LOG_LEVEL ?? 'warn' }, output);
  const head = new Head({
    log,
    output,
    logLevel: process.env.RAYLINE_TEST_LOG_LEVEL ?? 'info',
    http: { host: '127.0.0.1', port: 0, ...options.http },
    dashboardPort: 0,
    metricsPort: 0,
    token: options.token,
    baseDir: fixturesDir,
    accessLog: false,
    ...options.head,
  });
  const addresses = await head.start();
  const rest = new ServeRestClient(addresses.rest, options.token);
  const test: TestHead = {
    head,
    http: addresses.http,
    rest,
    metricsUrl: `${addresses.metrics}/metrics`,
    logs,
    async deploy(config) {
      const parsed = parseServeConfig(config);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
      head.apply(parsed.value);
    },
    async waitForApp(name, statuses, timeoutMs = 60_000) {
      return waitFor(
        () => {
          const app = head.controller.applicationDetails()[name];
          return app && statuses.includes(app.status) ? app : undefined;
        },
        timeoutMs,
        () =>
          `application '${name}' to become ${statuses.join('/')} (now ${head.controller.applicationDetails()[name]?.status}: ${head.controller.applicationDetails()[name]?.message})\n${logs.slice(-20).join('\n')}`,
      );
    },
    stop: () => head.stop(),
  };
  return test;
}

/** Polls until `check` returns a value other than undefined/false. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string | (() => string),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies in tests are asserted field by field
export type Json = any;

export function json(res: Response): Promise<Json> {
  return res.json() as Promise<Json>;
}
