import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';

/**
 * The `cors` block: an empty list (or `"*"` among the origins) allows any origin or method, so a
 * missing block is fully permissive, as in the original. Request headers are always allowed;
 * credentials are not supported.
 */
export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;
  private readonly methods: string;

  constructor(allowedOrigins: string[], allowedMethods: string[]) {
    this.anyOrigin = allowedOrigins.length === 0 || allowedOrigins.includes('*');
    this.origins = new Set(allowedOrigins);
    this.methods = allowedMethods.map((m) => m.toUpperCase()).join(', ');
  }

  /** A browser's preflight: OPTIONS naming the method it wants to use. */
  static isPreflight(req: IncomingMessage): boolean {
    return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
  }

  /** Headers for an ordinary response (none when the origin is not allowed). */
  headers(req: IncomingMessage): OutgoingHttpHeaders {
    if (this.anyOrigin) return { 'access-control-allow-origin': '*' };
    const origin = req.headers.origin;
    if (origin !== undefined && this.origins.has(origin)) return { 'access-control-allow-origin': origin, vary: 'Origin' };
    return { vary: 'Origin' };
  }

  /** Headers answering a preflight (204); a disallowed origin gets no allow headers, so the browser refuses. */
  preflightHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const headers = this.headers(req);
    if (headers['access-control-allow-origin'] === undefined) return headers;
    headers['access-control-allow-methods'] = this.methods || (req.headers['access-control-request-method'] as string);
    headers['access-control-allow-headers'] = req.headers['access-control-request-headers'] ?? '*';
    return headers;
  }
}
