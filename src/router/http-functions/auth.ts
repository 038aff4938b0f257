import { createHmac } from 'node:crypto';
import type { HttpAuth } from '../../protocol/messages';
import { EngineError } from '../../protocol/errors';

/**
 * Ours: the environment variable an `auth` block names is not set on the engine host. iii only
 * logs `token_not_found` / `secret_not_found` / `api_key_not_found`; those stay at the start of
 * the message.
 */
export const AUTH_SECRET_NOT_FOUND = 'auth_secret_not_found';

/**
 * Ours: an `auth` block names one of the engine's own variables. Any worker may register an
 * HTTP function, and its URL receives the secret, so naming `III_REDIS_URL` (which may carry the
 * Redis password) or `III_WORKER_TOKEN` would hand the engine's credentials to that worker.
 */
export const AUTH_SECRET_RESERVED = 'auth_secret_reserved';

/** Prefix of the engine's own environment variables (case-insensitive, as on Windows). */
const ENGINE_ENV_PREFIX = 'III_';

/** The env var an auth block names, which field named it, and iii's log code when it is unset. */
function secretRef(auth: HttpAuth): { envVar: string; field: string; missingCode: string } {
  switch (auth.type) {
    case 'bearer':
      return { envVar: auth.token_key, field: 'token_key', missingCode: 'token_not_found' };
    case 'hmac':
      return { envVar: auth.secret_key, field: 'secret_key', missingCode: 'secret_not_found' };
    case 'api_key':
      return { envVar: auth.value_key, field: 'value_key', missingCode: 'api_key_not_found' };
  }
}

/** Reads the secret named by `auth` from `env`; an EngineError when the variable is not set or reserved. */
export function readAuthSecret(auth: HttpAuth, env: NodeJS.ProcessEnv): string | EngineError {
  const ref = secretRef(auth);
  if (ref.envVar.toUpperCase().startsWith(ENGINE_ENV_PREFIX)) {
    return new EngineError(
      AUTH_SECRET_RESERVED,
      `environment variable ${ref.envVar} (auth.${ref.field} of a ${auth.type} auth) is one of the engine's own settings (${ENGINE_ENV_PREFIX}*), which HTTP functions may not send; store the function's secret under another name`,
    );
  }
  const value = env[ref.envVar];
  if (value === undefined) {
    return new EngineError(
      AUTH_SECRET_NOT_FOUND,
      `${ref.missingCode}: environment variable ${ref.envVar} (auth.${ref.field} of a ${auth.type} auth) is not set on the engine host`,
    );
  }
  return value;
}

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>:<base64(body)>")>`, the `x-iii-Signature` value. */
export function hmacSignature(secret: string, timestampSeconds: number, body: Buffer): string {
  const digest = createHmac('sha256', secret)
    .update(`${timestampSeconds}:${body.toString('base64')}`)
    .digest('hex');
  return `sha256=${digest}`;
}

/** The header that carries `auth`, as [name, value]. */
export function authHeader(auth: HttpAuth, secret: string, timestampSeconds: number, body: Buffer): [string, string] {
  switch (auth.type) {
    case 'bearer':
      return ['Authorization', `Bearer ${secret}`];
    case 'api_key':
      return [auth.header, secret];
    case 'hmac':
      return ['x-iii-Signature', hmacSignature(secret, timestampSeconds, body)];
  }
}
