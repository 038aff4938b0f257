import type { IncomingMessage } from 'node:http';
import type { Json } from '../../protocol/messages';
import { TOKEN_QUERY_PARAM } from './shared-token';

/**
 * The input of an RBAC auth function (iii-protocol.md §3.7): the upgrade request's headers
 * (names lower-cased, the last of repeated ones wins), its query parameters split on `&` and `=`
 * but not percent-decoded (each name maps to the list of its values, in order), and the TCP
 * peer's address (no proxy headers).
 *
 * When the listener also checks a shared token, the token never reaches the function: the
 * `token` query parameter and an `Authorization` header carrying it are left out.
 */
export function authInput(request: IncomingMessage, sharedToken: boolean): Json {
  // No prototype: a header or parameter named `__proto__` is just a name.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers[raw[i].toLowerCase()] = raw[i + 1]!;
  const query = rawQuery(request.url ?? '/');
  if (sharedToken) {
    delete query[TOKEN_QUERY_PARAM];
    if (/^bearer\s/i.test(headers['authorization'] ?? '')) delete headers['authorization'];
  }
  return { headers, query_params: query, ip_address: request.socket.remoteAddress ?? '' };
}

/** `a=1&a=2&b` -> {a: ['1', '2'], b: ['']}, values as sent (no percent-decoding). */
export function rawQuery(url: string): Record<string, string[]> {
  const params: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  const at = url.indexOf('?');
  if (at === -1) return params;
  for (const pair of url.slice(at + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    const value = eq === -1 ? '' : pair.slice(eq + 1);
    (Object.hasOwn(params, name) ? params[name] : (params[name] = [])).push(value);
  }
  return params;
}
