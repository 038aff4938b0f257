/**
 * The route table of the HTTP trigger: a trie keyed by path segment, so matching a URL costs one
 * step per segment whatever the number of routes. At each node a static child is tried before
 * the parameter child (static beats param), with backtracking when the static branch dead-ends.
 */

/** One path segment of a registered pattern: literal text or a named parameter. */
export type Segment = { kind: 'static'; text: string } | { kind: 'param'; name: string };

interface Node<T> {
  statics: Map<string, Node<T>>;
  param: Node<T> | undefined;
  /** Values stored at this node, by upper-case method. */
  methods: Map<string, Stored<T>>;
}

interface Stored<T> {
  paramNames: string[];
  value: T;
}

export type Match<T> =
  | { kind: 'found'; value: T; params: Record<string, string> }
  /** The path exists, but not with this method; `allow` lists the methods it has. */
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'not_found' };

/** Thrown by `insert` when a route of the same method and shape names its parameters differently. */
export class RouteConflictError extends Error {}

function newNode<T>(): Node<T> {
  return { statics: new Map(), param: undefined, methods: new Map() };
}

export class RouteTrie<T> {
  private readonly root: Node<T> = newNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Stores `value` for `method` + `segments`, replacing the value of the same route (last wins). */
  insert(method: string, segments: Segment[], value: T, describe: () => string): void {
    let node = this.root;
    const paramNames: string[] = [];
    for (const segment of segments) {
      if (segment.kind === 'static') {
        let next = node.statics.get(segment.text);
        if (!next) node.statics.set(segment.text, (next = newNode()));
        node = next;
      } else {
        node.param ??= newNode();
        node = node.param;
        paramNames.push(segment.name);
      }
    }
    const existing = node.methods.get(method);
    if (existing && !sameNames(existing.paramNames, paramNames)) {
      throw new RouteConflictError(
        `${describe()} conflicts with already-registered route ${method} ${patternOf(segments, existing.paramNames)}`,
      );
    }
    node.methods.set(method, { paramNames, value });
    if (!existing) this.count++;
  }

  /** Removes the route if `shouldRemove` accepts its current value; empty branches are pruned. */
  remove(method: string, segments: Segment[], shouldRemove: (current: T) => boolean): boolean {
    const path: Array<{ node: Node<T>; segment: Segment }> = [];
    let node: Node<T> | undefined = this.root;
    for (const segment of segments) {
      const next: Node<T> | undefined = segment.kind === 'static' ? node.statics.get(segment.text) : node.param;
      if (!next) return false;
      path.push({ node, segment });
      node = next;
    }
    const stored = node.methods.get(method);
    if (!stored || !shouldRemove(stored.value)) return false;
    node.methods.delete(method);
    this.count--;
    for (let i = path.length - 1; i >= 0 && isEmpty(node); i--) {
      const { node: parent, segment } = path[i];
      if (segment.kind === 'static') parent.statics.delete(segment.text);
      else parent.param = undefined;
      node = parent;
    }
    return true;
  }

  /** Matches concrete (still percent-encoded) URL path segments against the table. */
  match(method: string, segments: string[]): Match<T> {
    const values: string[] = [];
    const node = this.walk(this.root, segments, 0, values);
    if (!node) return { kind: 'not_found' };
    // A GET route also answers HEAD (as the original's router does).
    const stored = node.methods.get(method) ?? (method === 'HEAD' ? node.methods.get('GET') : undefined);
    if (!stored) {
      const allow = [...node.methods.keys()];
      if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD');
      return { kind: 'method_not_allowed', allow: allow.sort() };
    }
    const params: Record<string, string> = {};
    stored.paramNames.forEach((name, i) => (params[name] = values[i]));
    return { kind: 'found', value: stored.value, params };
  }

  private walk(node: Node<T>, segments: string[], index: number, values: string[]): Node<T> | undefined {
    if (index === segments.length) return node.methods.size > 0 ? node : undefined;
    const segment = segments[index];
    const byStatic = node.statics.get(segment);
    if (byStatic) {
      const found = this.walk(byStatic, segments, index + 1, values);
      if (found) return found;
    }
    if (node.param && segment !== '') {
      values.push(segment);
      const found = this.walk(node.param, segments, index + 1, values);
      if (found) return found;
      values.pop();
    }
    return undefined;
  }
}

function isEmpty<T>(node: Node<T>): boolean {
  return node.methods.size === 0 && node.statics.size === 0 && node.param === undefined;
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function patternOf(segments: Segment[], names: string[]): string {
  let p = 0;
  return '/' + segments.map((s) => (s.kind === 'static' ? s.text : `:${names[p++]}`)).join('/');
}
