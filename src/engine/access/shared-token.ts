import type { IncomingMessage } from 'node:http';
import { sameSecret } from '../../transport/secret';

/**
 * The shared worker token (`III_WORKER_TOKEN`, or `auth_token` in an `iii-worker-manager`
 * block): a worker presents it as `Authorization: Bearer <token>` (iii-sdk `InitOptions.headers`)
 * or as `?token=<token>` in its URL.
 */

export const TOKEN_QUERY_PARAM = 'token';

/** The token a request presents: the bearer header first, else the query parameter (percent-decoded). */
export function presentedToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  const bearer = header === undefined ? undefined : /^bearer\s+(.+)$/i.exec(header.trim());
  if (bearer) return bearer[1].trim();
  const url = request.url ?? '/';
  const at = url.indexOf('?');
  if (at === -1) return undefined;
  return new URLSearchParams(url.slice(at + 1)).get(TOKEN_QUERY_PARAM) ?? undefined;
}

export function tokenMatches(request: IncomingMessage, expected: string): boolean {
  const given = presentedToken(request);
  return given !== undefined && sameSecret(given, expected);
}
