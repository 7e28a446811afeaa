/** Maps a request path to an application by its route prefix; the longest matching prefix wins. */

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
