import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerOf, cookieOf } from './auth';

/**
 * Signing in to the console through an RBAC auth function, for a node whose worker port has one
 * and no shared token (auth.ts covers the token). The operator gives a credential (the login
 * form, `?token=`, or `Authorization: Bearer`); the engine asks the auth function about it as if
 * a worker connected with `Authorization: Bearer <credential>` from the operator's address, and
 * the console then allows what such a worker could call.
 *
 * There is no secret shared by the nodes to sign a session with, so the browser keeps the
 * credential itself, in an HttpOnly, SameSite=Strict cookie (Secure under TLS), and every node
 * asks the auth function again, at most every SIGN_IN_CACHE_MS per credential and address: a
 * credential the auth function stops accepting stops working within that time.
 */

/** What a signed-in operator may call: `denial(id)` says why not, or undefined when allowed. */
export interface ConsoleAccess {
  denial(functionId: string): string | undefined;
}

/** Asks the auth function about a credential; rejects with the reason when it refuses. */
export type SignIn = (credential: string, request: IncomingMessage) => Promise<ConsoleAccess>;

export const CREDENTIAL_COOKIE = 'iii_console_credential';
/** How long an auth function's answer about one credential from one address is reused, in ms. */
export const SIGN_IN_CACHE_MS = 10_000;
/** Answers kept at most; the oldest goes first. */
export const MAX_SIGN_INS = 1024;
/** Longest credential taken, in characters; longer is refused without asking the auth function. */
export const MAX_CREDENTIAL_CHARS = 4096;

export function credentialCookie(credential: string, secure: boolean): string {
  return `${CREDENTIAL_COOKIE}=${encodeURIComponent(credential)}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

export const CLEARED_CREDENTIAL = `${CREDENTIAL_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

/** The credential a request carries: the cookie, else an `Authorization: Bearer` header. */
export function credentialOf(request: IncomingMessage): string | undefined {
  const cookie = cookieOf(request, CREDENTIAL_COOKIE);
  if (cookie !== undefined && cookie !== '') {
    try {
      return decodeURIComponent(cookie);
    } catch {
      return undefined;
    }
  }
  return bearerOf(request);
}

/** The auth function's answers, reused for SIGN_IN_CACHE_MS; a refusal is not kept. */
export class SignIns {
  private readonly answers = new Map<string, { access: Promise<ConsoleAccess>; atMs: number }>();

  constructor(private readonly signIn: SignIn) {}

  access(credential: string, request: IncomingMessage): Promise<ConsoleAccess> {
    if (credential.length > MAX_CREDENTIAL_CHARS)
      return Promise.reject(new Error(`the credential is longer than ${MAX_CREDENTIAL_CHARS} characters`));
    const key = createHash('sha256')
      .update(`${request.socket.remoteAddress ?? ''}\0${credential}`)
      .digest('base64url');
    const known = this.answers.get(key);
    if (known !== undefined && Date.now() - known.atMs < SIGN_IN_CACHE_MS) return known.access;
    this.answers.delete(key);
    if (this.answers.size >= MAX_SIGN_INS) this.answers.delete(this.answers.keys().next().value!);
    const access = this.signIn(credential, request);
    this.answers.set(key, { access, atMs: Date.now() });
    access.catch(() => this.answers.delete(key));
    return access;
  }
}
