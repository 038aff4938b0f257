import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { unmappedAddress } from '../transport/address-limit';
import { sameSecret } from '../transport/secret';

/**
 * Who may use the console. It takes the worker token of the first worker listener
 * (`III_WORKER_TOKEN` / `auth_token`), since anyone holding that token can already call every
 * function over the worker port: the console gives them nothing more.
 *
 * - With a token: a request must carry the session cookie, an `Authorization: Bearer <token>`
 *   header, or `?token=` (which the server swaps for the cookie at once). Anything else is 401.
 * - Without one: like the worker listener's protected mode, loopback peers only; others get 403.
 *
 * The cookie holds an HMAC of the token, not the token: a cookie copied out of a browser
 * cannot be used as a worker token. It is the same on every node of a cluster that shares
 * the token, and void once the token changes.
 */

export const COOKIE_NAME = 'iii_console';

export type AuthDecision = { ok: true } | { ok: false; status: 401 | 403; message: string };

export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('iii-console-session-v1').digest('base64url');
}

/** The Set-Cookie header for a signed-in browser: HttpOnly (no script reads it), SameSite=Strict (no cross-site sends). */
export function sessionCookie(token: string, secure: boolean): string {
  return `${COOKIE_NAME}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

export const CLEARED_COOKIE = `${COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

export function cookieOf(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export function bearerOf(request: IncomingMessage): string | undefined {
  const match = /^bearer\s+(.+)$/i.exec(request.headers.authorization?.trim() ?? '');
  return match ? match[1].trim() : undefined;
}

export function decide(request: IncomingMessage, token: string | undefined): AuthDecision {
  if (token === undefined) {
    if (isLoopbackAddress(request.socket.remoteAddress ?? '')) return { ok: true };
    return {
      ok: false,
      status: 403,
      message:
        'the console has no token to check (set III_WORKER_TOKEN or auth_token of the first iii-worker-manager), so it serves loopback peers only',
    };
  }
  const cookie = cookieOf(request, COOKIE_NAME);
  if (cookie !== undefined && sameSecret(cookie, sessionValue(token))) return { ok: true };
  const bearer = bearerOf(request);
  if (bearer !== undefined && sameSecret(bearer, token)) return { ok: true };
  return {
    ok: false,
    status: 401,
    message: 'sign in with the worker token (login form, ?token=, or Authorization: Bearer <token>)',
  };
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms (as the worker listener's protected mode; kept here so console/ imports nothing of engine/). */
function isLoopbackAddress(address: string): boolean {
  const v4 = unmappedAddress(address);
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1';
}
