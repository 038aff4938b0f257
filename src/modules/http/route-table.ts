import { RouteTrie, type Match } from './route-trie';
import type { HttpRoute } from './route';

/**
 * The live `http` bindings. A route key (method + pattern) registered again by another binding
 * is taken over by it (last wins); removing a binding removes its route only while the route
 * still belongs to that binding, so a newer registration survives the older one's removal.
 */
export class RouteTable {
  private readonly trie = new RouteTrie<HttpRoute>();

  get size(): number {
    return this.trie.size;
  }

  /** Throws RouteConflictError when the same method and shape name their parameters differently. */
  add(route: HttpRoute): void {
    this.trie.insert(
      route.method,
      route.segments,
      route,
      () => `Route ${route.method} ${route.pattern} (trigger ${route.triggerId})`,
    );
  }

  remove(route: HttpRoute): boolean {
    return this.trie.remove(
      route.method,
      route.segments,
      (current) => current.triggerId === route.triggerId && current.ownerWorkerId === route.ownerWorkerId,
    );
  }

  match(method: string, segments: string[]): Match<HttpRoute> {
    return this.trie.match(method, segments);
  }
}
