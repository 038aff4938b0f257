import type { Redis } from 'ioredis';
import type { EngineConfig } from '../config/types';
import { openRedis, redisConnection } from './redis-connection';
import type { RedisEndpoint } from './redis-options';
import type { Logger } from '../observability/logger';

/**
 * A storage command that gets no answer fails after this long, in ms, instead of hanging its
 * caller on a Redis that accepts connections but does not reply (paused, swapping).
 */
const COMMAND_TIMEOUT_MS = 5000;

/** Where a `redis` adapter keeps its data. */
export interface RedisTarget extends RedisEndpoint {
  /** Starts every key and channel: the cluster's, so one Redis can hold several clusters. */
  keyPrefix: string;
}

/** Whether the node runs in cluster mode: a Redis URL, or sentinels (Sentinel mode). */
export function isClusterMode(cluster: EngineConfig['cluster']): boolean {
  return (
    cluster.redisUrl !== undefined || cluster.redisSentinels !== undefined || cluster.redisClusterNodes !== undefined
  );
}

/**
 * The cluster's Redis (`cluster.redis_url`, or `cluster.redis_sentinels` with the primary's
 * name), undefined outside cluster mode. III_REDIS_PASSWORD replaces the URL's password (in
 * Sentinel mode it is the data nodes'); the CA file applies to TLS.
 */
export function clusterRedis(cluster: EngineConfig['cluster']): RedisEndpoint | undefined {
  if (cluster.redisClusterNodes !== undefined) {
    return {
      cluster: { nodes: cluster.redisClusterNodes },
      ...(cluster.redisTls === true ? { tls: true } : {}),
      ...secrets(cluster),
    };
  }
  if (cluster.redisSentinels !== undefined && cluster.redisSentinelName !== undefined) {
    return {
      sentinel: {
        sentinels: cluster.redisSentinels,
        name: cluster.redisSentinelName,
        ...(cluster.redisSentinelPassword === undefined ? {} : { password: cluster.redisSentinelPassword }),
      },
      ...(cluster.redisTls === true ? { tls: true } : {}),
      ...secrets(cluster),
    };
  }
  if (cluster.redisUrl === undefined) return undefined;
  return endpoint(cluster.redisUrl, cluster);
}

/**
 * The Redis of a module's `redis` adapter: `adapter.config.redis_url`, else the cluster's;
 * the key prefix is always the cluster's. A module's own URL is treated as the cluster's:
 * III_REDIS_PASSWORD replaces its password (config/cluster.yaml repeats the cluster URL in every
 * module), the CA file applies to rediss://. Throws when no URL is known.
 */
export function redisTarget(
  module: string,
  options: Record<string, unknown> | null | undefined,
  cluster: EngineConfig['cluster'],
): RedisTarget {
  const own = options?.['redis_url'];
  if (typeof own === 'string' && own !== '') return { ...endpoint(own, cluster), keyPrefix: cluster.keyPrefix };
  const shared = clusterRedis(cluster);
  if (shared === undefined)
    throw new Error(
      `${module}: adapter redis needs cluster.redis_url / III_REDIS_URL or adapter.config.redis_url (or sentinels: III_REDIS_SENTINELS with III_REDIS_SENTINEL_NAME, or III_REDIS_CLUSTER_NODES)`,
    );
  return { ...shared, keyPrefix: cluster.keyPrefix };
}

/** A URL with the node-wide password and CA. */
function endpoint(url: string, cluster: EngineConfig['cluster']): RedisEndpoint {
  return { url, ...secrets(cluster) };
}

/** The node-wide password and CA, each present only when set (exactOptionalPropertyTypes). */
function secrets(cluster: EngineConfig['cluster']): Pick<RedisEndpoint, 'password' | 'tlsCaFile'> {
  return {
    ...(cluster.redisPassword === undefined ? {} : { password: cluster.redisPassword }),
    ...(cluster.redisTlsCaFile === undefined ? {} : { tlsCaFile: cluster.redisTlsCaFile }),
  };
}

/**
 * Opens a data connection (fails commands at once while Redis is down, reconnects forever).
 * Redis unreachable, or refusing the password or the TLS handshake, fails the caller with the
 * reason in words, as the original fails its boot, and leaves no reconnect loop behind.
 */
export async function connectRedis(endpoint: RedisEndpoint, name: string, logger: Logger): Promise<Redis> {
  const redis = redisConnection(endpoint, name, logger, { commandTimeout: COMMAND_TIMEOUT_MS });
  try {
    await openRedis(redis, name);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

/** Closes a connection politely if it can, at once if Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
