/**
 * Maps a request path to an application by its route prefix; the longest matching prefix wins.
 * Matching uses the path the application sees, decoded: route prefixes are stored decoded too.
 */

/** Characters a path may hold as they are; anything else (`%`, dot segments) takes the slow way. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

/**
 * The path a route is matched on: what `ServeRequest.path` tells the application (the WHATWG URL
 * parser's pathname, so `/a/../b` is `/b`), percent-decoded except for `%2F`, which stays an
 * encoded slash inside a segment rather than becoming a separator.
 */
export function routingPath(rawPath: string): string {
  if (PLAIN_PATH.test(rawPath) && !rawPath.includes('//') && !DOT_SEGMENT.test(rawPath)) return rawPath;
  let pathname: string;
  try {
    pathname = new URL(rawPath, 'http://rayline.local').pathname;
  } catch {
    return rawPath;
  }
  if (!pathname.includes('%')) return pathname;
  return pathname
    .split(/%2f/i)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    })
    .join('%2F');
}

export interface RouteTarget {
  routePrefix: string;
  app: string;
  ingress: string;
}

export class RouteTable {
  #routes: RouteTarget[] = [];

  update(routes: readonly RouteTarget[]): void {
    this.#routes = [...routes].sort((a, b) => b.routePrefix.length - a.routePrefix.length);
  }

  get size(): number {
    return this.#routes.length;
  }

  match(path: string): RouteTarget | undefined {
    for (const route of this.#routes) {
      const p = route.routePrefix;
      if (p === '/' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47) /* '/' */)
        return route;
    }
    return undefined;
  }

  /** `{ "/prefix": "app" }`, as Ray's `/-/routes` answers. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#routes.map((r) => [r.routePrefix, r.app]));
  }
}
