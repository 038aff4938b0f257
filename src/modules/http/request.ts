import type { IncomingMessage } from 'node:http';

/** The parts of a request URL the pipeline uses; the path keeps its percent-encoding. */
export interface RequestTarget {
  /** Path without the leading `/`, e.g. `users/42`. */
  path: string;
  query: Record<string, string>;
}

/**
 * Splits `req.url` (origin form `/a?b`, or absolute form from a proxy) into path and query.
 * Query values are URL-decoded; a repeated key keeps its last value (as the original).
 */
export function requestTarget(url: string): RequestTarget {
  let target = url;
  if (!target.startsWith('/')) {
    // Absolute form: `http://host/path?query`; the authority is not ours to use.
    const scheme = target.indexOf('://');
    const slash = scheme < 0 ? -1 : target.indexOf('/', scheme + 3);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const q = target.indexOf('?');
  const path = (q < 0 ? target : target.slice(0, q)).slice(1);
  const query = q < 0 ? {} : Object.fromEntries(new URLSearchParams(target.slice(q + 1)));
  return { path, query };
}

/** Path parameters percent-decoded (ours; the original hands over the raw segments). */
export function decodeParams(
  raw: Record<string, string>,
): { ok: true; params: Record<string, string> } | { ok: false; segment: string } {
  const params: Record<string, string> = {};
  // for-in rather than Object.entries: no array per parameter on every request.
  for (const name in raw) {
    const value = raw[name];
    try {
      params[name] = decodeURIComponent(value);
    } catch {
      return { ok: false, segment: value };
    }
  }
  return { ok: true, params };
}

/** Header names lower-case; a repeated header keeps its last value (as the original). */
export function requestHeaders(req: IncomingMessage): Record<string, string> {
  // No prototype: a header named `__proto__` is kept like any other instead of being dropped.
  const headers = Object.create(null) as Record<string, string>;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers[raw[i].toLowerCase()] = raw[i + 1];
  return headers;
}
