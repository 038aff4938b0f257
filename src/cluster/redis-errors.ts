import type { Redis } from 'ioredis';

/** Why a Redis connection failed, in words a user can act on. */
export interface RedisProblem {
  /**
   * `auth` and `tls` are configuration mistakes that no retry will fix (logged as warnings);
   * `other` may pass by itself (Redis restarting, a network blip).
   */
  kind: 'auth' | 'tls' | 'other';
  text: string;
}

/** Node's codes for a server certificate that did not verify. */
const UNTRUSTED_CERT_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Explains a connection error: a missing or wrong password (the server's NOAUTH / WRONGPASS), a
 * certificate the node does not trust, a TLS handshake that went nowhere (`tls`: the URL is
 * rediss://), or a plain client on a TLS port. Anything else keeps its own message.
 */
export function explainRedisError(err: unknown, tls: boolean): RedisProblem {
  const { code, message } = codeAndMessage(err);
  if (message.startsWith('NOAUTH')) {
    return {
      kind: 'auth',
      text: 'Redis requires a password (NOAUTH): put it in the URL (redis://:PASSWORD@host:port) or in III_REDIS_PASSWORD',
    };
  }
  if (message.startsWith('WRONGPASS') || /invalid password/i.test(message)) {
    return {
      kind: 'auth',
      text: 'Redis refused the user name or password (WRONGPASS): check III_REDIS_PASSWORD, or the user and password in the Redis URL',
    };
  }
  if (UNTRUSTED_CERT_CODES.has(code)) {
    return {
      kind: 'tls',
      text: `Redis's TLS certificate is not trusted (${code}: ${message}): set III_REDIS_TLS_CA_FILE (cluster.redis_tls_ca_file) to the CA that signed it, and connect by a host name or address the certificate lists`,
    };
  }
  if (tls && (code === 'ETIMEDOUT' || code.startsWith('ERR_SSL') || /\b(TLS|SSL)\b|wrong version/i.test(message))) {
    return {
      kind: 'tls',
      text: `the TLS handshake with Redis failed (${code || message}): a rediss:// URL needs a port serving TLS (redis-server --tls-port); for a plain port use redis://`,
    };
  }
  if (!tls && code === 'ECONNRESET') {
    return {
      kind: 'other',
      text: `Redis reset the connection (ECONNRESET); if this port serves TLS, use a rediss:// URL`,
    };
  }
  return { kind: 'other', text: code !== '' && !message.includes(code) ? `${code}: ${message}` : message };
}

/**
 * ioredis puts the command that failed on its error (`err.command.args`): for the AUTH or
 * HELLO ... AUTH it sends on connecting, those arguments are the user name and password. They are
 * replaced by `***` (a copy: the command itself is left alone), before the error reaches a log
 * line or another listener (see scrubErrorsOf).
 */
export function scrubRedisError(err: unknown): void {
  if (typeof err !== 'object' || err === null || !('command' in err)) return;
  const command = err.command;
  if (typeof command !== 'object' || command === null) return;
  const { name, args } = command as { name?: unknown; args?: unknown };
  if (typeof name === 'string' && /^(auth|hello)$/i.test(name) && Array.isArray(args)) {
    err.command = { name, args: args.map(() => '***') };
  }
}

/**
 * Makes `redis`, and every connection duplicated from it (BullMQ opens its Worker connections as
 * duplicates, and duplicates of those), scrub their errors before any other listener sees them.
 * Call it before adding other `error` listeners.
 */
export function scrubErrorsOf(redis: Redis): Redis {
  redis.on('error', scrubRedisError);
  // Every argument passes on: a Cluster's duplicate takes (startupNodes, options), and BullMQ
  // puts its connection name in the options.
  const duplicate = redis.duplicate.bind(redis) as (...args: unknown[]) => Redis;
  redis.duplicate = (...args: unknown[]) => scrubErrorsOf(duplicate(...args));
  return redis;
}

function codeAndMessage(err: unknown): { code: string; message: string } {
  if (typeof err !== 'object' || err === null) return { code: '', message: String(err) };
  const { code, message } = err as { code?: unknown; message?: unknown };
  return { code: typeof code === 'string' ? code : '', message: typeof message === 'string' ? message : String(err) };
}
