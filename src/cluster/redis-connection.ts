import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger';
import { explainRedisError, scrubErrorsOf } from './redis-errors';
import { redisOptions, type RedisEndpoint } from './redis-options';

/** Wait between reconnect attempts, growing by this step per attempt up to the cap, in ms. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** Why each connection is down, in words (see explainRedisError); cleared when it is ready. */
const problems = new WeakMap<Redis, string>();

/**
 * An ioredis connection as every cluster part wants it: password and TLS from the endpoint,
 * reconnects forever with a capped backoff, and fails commands at once while disconnected (no
 * offline queue), so a call in flight gets a clear error instead of waiting for Redis to come back.
 *
 * A connection error that is a configuration mistake (NOAUTH, WRONGPASS, an untrusted
 * certificate, TLS against a plain port) is logged as a warning, once per change; others (the
 * reconnect attempts of an outage) at debug. No log line holds the password.
 */
export function redisConnection(endpoint: RedisEndpoint, name: string, logger: Logger, options: RedisOptions = {}): Redis {
  const target = redisOptions(endpoint);
  const tls = target.tls !== undefined;
  const redis = new Redis({
    ...target,
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    lazyConnect: true,
    // After disconnect(), ioredis keeps a timer this long (default 2 s) that would hold the process.
    disconnectTimeout: 100,
    ...options,
  });
  scrubErrorsOf(redis);
  redis.on('error', (err: Error) => {
    const problem = explainRedisError(err, tls);
    if (problem.kind !== 'other' && problem.text !== problems.get(redis)) logger.warn({ connection: name, redis: `${target.host}:${target.port}`, tls }, problem.text);
    else logger.debug({ err, connection: name }, 'redis connection error');
    problems.set(redis, problem.text);
  });
  redis.on('ready', () => problems.delete(redis));
  return redis;
}

/** Why a connection made by redisConnection is not ready, in words; undefined when it is, or nothing failed yet. */
export function redisProblem(redis: Redis): string | undefined {
  return redis.status === 'ready' ? undefined : problems.get(redis);
}

/**
 * Connects a connection made by redisConnection; a failure rejects with what went wrong in words
 * (`<name>: cannot connect to Redis at host:port: Redis refused the ... (WRONGPASS) ...`).
 * ioredis keeps retrying after a failed first attempt: the caller disconnects if it gives up.
 */
export async function openRedis(redis: Redis, name: string): Promise<void> {
  try {
    await redis.connect();
  } catch (err) {
    const where = `${redis.options.host}:${redis.options.port}${redis.options.tls ? ' (TLS)' : ''}`;
    throw new Error(`${name}: cannot connect to Redis at ${where}: ${problems.get(redis) ?? (err as Error).message}`);
  }
}
