import type { Redis } from 'ioredis';
import type { EngineConfig } from '../config/types';
import { redisConnection } from './redis-connection';
import type { Logger } from '../observability/logger';

/**
 * A storage command that gets no answer fails after this long, in ms, instead of hanging its
 * caller on a Redis that accepts connections but does not reply (paused, swapping).
 */
const COMMAND_TIMEOUT_MS = 5000;

/** Where a `redis` adapter keeps its data. */
export interface RedisTarget {
  url: string;
  /** Starts every key and channel: the cluster's, so one Redis can hold several clusters. */
  keyPrefix: string;
}

/**
 * The Redis of a module's `redis` adapter: `adapter.config.redis_url`, else the cluster's URL;
 * the key prefix is always the cluster's. Throws when no URL is known.
 */
export function redisTarget(module: string, options: Record<string, unknown> | null | undefined, cluster: EngineConfig['cluster']): RedisTarget {
  const own = options?.['redis_url'];
  const url = typeof own === 'string' && own !== '' ? own : cluster.redisUrl;
  if (url === undefined) throw new Error(`${module}: adapter redis needs cluster.redis_url / III_REDIS_URL or adapter.config.redis_url`);
  return { url, keyPrefix: cluster.keyPrefix };
}

/**
 * Opens a data connection (fails commands at once while Redis is down, reconnects forever).
 * Redis unreachable now fails the caller, as the original fails its boot, and leaves no
 * reconnect loop behind.
 */
export async function connectRedis(url: string, name: string, logger: Logger): Promise<Redis> {
  const redis = redisConnection(url, name, logger, { commandTimeout: COMMAND_TIMEOUT_MS });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`${name}: cannot connect to Redis at ${redis.options.host}:${redis.options.port}: ${(err as Error).message}`);
  }
  return redis;
}

/** Closes a connection politely if it can, at once if Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
