/** Typed client of the REST API, shared by the CLI and the operator. */
import { type ErrorCode, ErrorCodes, RaylineError } from '../../errors.ts';
import type { ServeConfigInput } from '../../schema/serve-config.ts';
import type { ServeInstanceDetails } from '../controller/status.ts';

export type { ApplicationDetails, ServeInstanceDetails } from '../controller/status.ts';

export class ServeRestClient {
  readonly address: string;
  readonly #token: string | undefined;

  constructor(address: string, token?: string) {
    this.address = address.replace(/\/+$/, '');
    this.#token = token;
  }

  async #request(method: string, body?: unknown): Promise<unknown> {
    const url = `${this.address}/api/serve/applications/`;
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new RaylineError(
        'RL_CONNECTION',
        `cannot reach the Rayline REST API at ${this.address}: ${(error as Error).cause ?? error}`,
      );
    }
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) {
      const message = typeof parsed.message === 'string' ? parsed.message : text;
      // The server's own code when it sent one, else what its status means.
      const sent = typeof parsed.code === 'string' ? parsed.code : parsed.error;
      const code: ErrorCode =
        typeof sent === 'string' && sent in ErrorCodes
          ? (sent as ErrorCode)
          : res.status === 401
            ? 'RL_UNAUTHORIZED'
            : res.status === 400
              ? 'RL_CONFIG_INVALID'
              : 'RL_INTERNAL';
      throw new RaylineError(code, `${method} ${url} answered ${res.status}: ${message}`, {
        issues: parsed.issues as { path: string; message: string }[] | undefined,
      });
    }
    return parsed;
  }

  getApplications(): Promise<ServeInstanceDetails> {
    return this.#request('GET') as Promise<ServeInstanceDetails>;
  }

  putApplications(config: ServeConfigInput): Promise<void> {
    return this.#request('PUT', config).then(() => undefined);
  }

  deleteApplications(): Promise<void> {
    return this.#request('DELETE').then(() => undefined);
  }
}
