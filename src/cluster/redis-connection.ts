import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger';
import { explainRedisError, scrubErrorsOf } from './redis-errors';
import { clusterOptions, describeEndpoint, redisOptions, type RedisEndpoint } from './redis-options';

/** Wait between reconnect attempts, growing by this step per attempt up to the cap, in ms. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** Why each connection is down, in words (see explainRedisError); cleared when it is ready. */
const problems = new WeakMap<Redis, string>();

/** Where each connection goes, for messages: `redis://:***@host:port`, or the sentinels and the primary's name. */
const targets = new WeakMap<Redis, string>();

/**
 * An ioredis connection as every cluster part wants it: password and TLS from the endpoint,
 * reconnects forever with a capped backoff, and fails commands at once while disconnected (no
 * offline queue), so a call in flight gets a clear error instead of waiting for Redis to come back.
 *
 * In Sentinel mode every reconnect asks the sentinels where the primary is now, so a connection
 * follows a failover by itself (see redisOptions).
 *
 * A connection error that is a configuration mistake (NOAUTH, WRONGPASS, an untrusted
 * certificate, TLS against a plain port) is logged as a warning, once per change; others (the
 * reconnect attempts of an outage) at debug. No log line holds the password.
 *
 * `cluster` options apply in Cluster mode only (e.g. `shardedSubscribers` for a connection that
 * will SSUBSCRIBE); elsewhere they are ignored.
 */
export function redisConnection(
  endpoint: RedisEndpoint,
  name: string,
  logger: Logger,
  options: RedisOptions = {},
  cluster: Pick<ClusterOptions, 'shardedSubscribers'> = {},
): Redis {
  if (endpoint.cluster !== undefined) return clusterConnection(endpoint, name, logger, options, cluster);
  const target = redisOptions(endpoint);
  const tls = target.tls !== undefined;
  // A URL's node is named host:port, as before Sentinel mode; sentinels by the primary's name.
  const where = endpoint.sentinel !== undefined ? describeEndpoint(endpoint) : `${target.host}:${target.port}`;
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
  if (endpoint.sentinel !== undefined) targets.set(redis, where);
  redis.on('error', (err: Error) => {
    const problem = explainRedisError(err, tls);
    if (problem.kind !== 'other' && problem.text !== problems.get(redis))
      logger.warn({ connection: name, redis: where, tls }, problem.text);
    else logger.debug({ err, connection: name }, 'redis connection error');
    problems.set(redis, problem.text);
    endpoint.onError?.(name.slice(name.lastIndexOf(':') + 1));
  });
  redis.on('ready', () => problems.delete(redis));
  return redis;
}

/**
 * Cluster mode: a `Redis.Cluster` with the same contract (fail fast while a shard is down,
 * reconnect forever). It is handed out typed as `Redis`: it has the same command methods,
 * events and status, which is all the cluster parts use; the few places that differ (SCAN walks
 * one node, sharded pub/sub) check `isRedisCluster`.
 */
function clusterConnection(
  endpoint: RedisEndpoint,
  name: string,
  logger: Logger,
  options: RedisOptions,
  extra: Pick<ClusterOptions, 'shardedSubscribers'>,
): Redis {
  const base = clusterOptions(endpoint);
  const where = describeEndpoint(endpoint);
  const tls = base.redisOptions?.tls !== undefined;
  const { commandTimeout, ...nodeOptions } = options;
  const cluster = new Cluster(endpoint.cluster?.nodes.map((n) => ({ host: n.host, port: n.port })) ?? [], {
    ...base,
    redisOptions: {
      ...base.redisOptions,
      connectionName: name,
      maxRetriesPerRequest: 0,
      disconnectTimeout: 100,
      ...(commandTimeout === undefined ? {} : { commandTimeout }),
      ...nodeOptions,
    },
    enableOfflineQueue: false,
    enableReadyCheck: true,
    lazyConnect: true,
    clusterRetryStrategy: (attempt) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    ...extra,
  }) as unknown as Redis;
  scrubErrorsOf(cluster);
  targets.set(cluster, where);
  cluster.on('error', (err: Error) => {
    const problem = explainRedisError(err, tls);
    if (problem.kind !== 'other' && problem.text !== problems.get(cluster))
      logger.warn({ connection: name, redis: where, tls }, problem.text);
    else logger.debug({ err, connection: name }, 'redis connection error');
    problems.set(cluster, problem.text);
  });
  cluster.on('ready', () => problems.delete(cluster));
  return cluster;
}

/** Whether a connection made by redisConnection is a Redis Cluster (Cluster mode). */
export function isRedisCluster(redis: Redis): boolean {
  return (redis as unknown) instanceof Cluster;
}

/** Why a connection made by redisConnection is not ready, in words; undefined when it is, or nothing failed yet. */
export function redisProblem(redis: Redis): string | undefined {
  return redis.status === 'ready' ? undefined : problems.get(redis);
}

/** Where a connection goes, for messages (never with the password): the endpoint it was made for, else host:port. */
export function redisWhere(redis: Redis): string {
  return targets.get(redis) ?? `${redis.options.host}:${redis.options.port}${redis.options.tls ? ' (TLS)' : ''}`;
}

/**
 * Connects a connection made by redisConnection; a failure rejects with what went wrong in words
 * (`<name>: cannot connect to Redis at host:port: Redis refused the ... (WRONGPASS) ...`).
 * ioredis keeps retrying after a failed first attempt: the caller disconnects if it gives up.
 * In Sentinel mode ioredis's connect() never fails (it goes round the sentinels for ever), so
 * the first error fails it here, as a refused connection does with a URL.
 */
export async function openRedis(redis: Redis, name: string): Promise<void> {
  let onError: ((err: Error) => void) | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_, reject) => {
        onError = reject;
        if (redis.options.sentinels || isRedisCluster(redis)) redis.once('error', onError);
      }),
    ]);
  } catch (err) {
    throw new Error(
      `${name}: cannot connect to Redis at ${redisWhere(redis)}: ${problems.get(redis) ?? (err as Error).message}`,
    );
  } finally {
    if (onError) redis.off('error', onError);
  }
}
