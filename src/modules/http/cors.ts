import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';

const ANY_ORIGIN: Readonly<OutgoingHttpHeaders> = { 'access-control-allow-origin': '*' };
const ORIGIN_REFUSED: Readonly<OutgoingHttpHeaders> = { vary: 'Origin' };

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
    return (
      req.method === 'OPTIONS' &&
      req.headers.origin !== undefined &&
      req.headers['access-control-request-method'] !== undefined
    );
  }

  /**
   * Headers for an ordinary response (none when the origin is not allowed). The object may be
   * shared between requests (one per policy for the common answers): copy it, never modify it.
   */
  headers(req: IncomingMessage): Readonly<OutgoingHttpHeaders> {
    if (this.anyOrigin) return ANY_ORIGIN;
    const origin = req.headers.origin;
    if (origin !== undefined && this.origins.has(origin))
      return { 'access-control-allow-origin': origin, vary: 'Origin' };
    return ORIGIN_REFUSED;
  }

  /** Headers answering a preflight (204); a disallowed origin gets no allow headers, so the browser refuses. */
  preflightHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const headers = { ...this.headers(req) };
    if (headers['access-control-allow-origin'] === undefined) return headers;
    headers['access-control-allow-methods'] = this.methods || req.headers['access-control-request-method'];
    headers['access-control-allow-headers'] = req.headers['access-control-request-headers'] ?? '*';
    return headers;
  }
}
