import fs from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { redactUrl } from '../observability/redact-url';

/** Where a Redis is and how to prove who we are to it. */
export interface RedisEndpoint {
  /**
   * `redis://[user[:password]@]host[:port][/db]`, or `rediss://...` for TLS. User and password
   * are percent-encoded, as in any URL.
   */
  url: string;
  /** Replaces the URL's password (III_REDIS_PASSWORD), so the secret need not be in the URL. */
  password?: string;
  /** PEM file of the CA certificate(s) trusted for rediss:// (cluster.redis_tls_ca_file); default: the system store. */
  tlsCaFile?: string;
}

/** The port of a URL that names none, as every Redis client assumes. */
const DEFAULT_PORT = 6379;

/**
 * ioredis options for an endpoint: host, port, db, user and password from the URL, the
 * endpoint's password in place of the URL's, and TLS for rediss:// (certificate and host name
 * verified). Query parameters become options as ioredis would read them (`?family=6`). Throws on
 * a URL that is not redis:// or rediss://, or an unreadable CA file; the message never holds the
 * password.
 */
export function redisOptions(endpoint: RedisEndpoint): RedisOptions {
  const url = parseRedisUrl(endpoint.url);
  const options: RedisOptions = {};
  url.searchParams.forEach((value, key) => {
    (options as Record<string, unknown>)[key] = key === 'family' ? Number(value) : value;
  });
  if (url.hostname === '') throw new Error(`Redis URL ${redactUrl(endpoint.url)}: no host (expected redis://host:port)`);
  options.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  options.port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  // The path is not echoed: in a mistyped URL it may hold the password.
  const db = url.pathname.slice(1);
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw new Error(`Redis URL ${redactUrl(endpoint.url)}: the path must be a database number (/0, /1...)`);
    options.db = Number(db);
  }
  if (url.username !== '') options.username = decoded(url.username, endpoint.url);
  const password = endpoint.password ?? (url.password === '' ? undefined : decoded(url.password, endpoint.url));
  if (password !== undefined) options.password = password;
  if (url.protocol === 'rediss:') options.tls = endpoint.tlsCaFile === undefined ? {} : { ca: readCa(endpoint.tlsCaFile) };
  return options;
}

function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a Redis URL: ${redactUrl(text)} (expected redis://host:port or rediss://host:port)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`not a Redis URL: ${redactUrl(text)} (expected redis:// or rediss://, got ${url.protocol}//)`);
  }
  return url;
}

/** A percent-decoded user or password; a broken escape is an error that does not echo it. */
function decoded(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error(`Redis URL ${redactUrl(url)}: the user or password has a malformed %-escape (write % as %25)`);
  }
}

function readCa(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the Redis TLS CA file ${file} (III_REDIS_TLS_CA_FILE / cluster.redis_tls_ca_file): ${(err as Error).message}`);
  }
}
