/** The no-op deployment the benchmarks compare with a bare Node.js server. */
import { deployment, type ServeRequest } from 'rayline';

class Noop {
  __call__(_request: ServeRequest) {
    return { ok: true };
  }
}

export const app = deployment(Noop).bind();
