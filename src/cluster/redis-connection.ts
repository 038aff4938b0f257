import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger';

/** Wait between reconnect attempts, growing by this step per attempt up to the cap, in ms. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 2000;

/**
 * An ioredis connection as every cluster part wants it: reconnects forever with a capped
 * backoff, and fails commands at once while disconnected (no offline queue), so a call in
 * flight gets a clear error instead of waiting for Redis to come back.
 */
export function redisConnection(url: string, name: string, logger: Logger, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    lazyConnect: true,
    // After disconnect(), ioredis keeps a timer this long (default 2 s) that would hold the process.
    disconnectTimeout: 100,
    ...options,
  });
  // ioredis emits `error` on every failed reconnect attempt; they are expected during an outage.
  redis.on('error', (err: Error) => logger.debug({ err, connection: name }, 'redis connection error'));
  return redis;
}
