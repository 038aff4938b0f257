import type { EngineConfig } from '../../../config/types';
import type { Logger } from '../../../observability/logger';
import { connectRedis, redisTarget } from '../../../cluster/redis-target';
import type { CronLock } from './lock';
import { DEFAULT_LOCK_TTL_MS, MemoryCronLock } from './memory-lock';
import { RedisCronLock } from './redis-lock';

/** Adapter names this build implements. */
export const SUPPORTED_CRON_ADAPTERS = ['kv', 'redis'] as const;

/**
 * The shortest lease and run mark the redis adapter accepts, in ms: a holder extends them every
 * third of it, and a shorter one could expire before an extension reaches Redis.
 */
export const MIN_LOCK_TTL_MS = 100;

/** What a lock needs from the engine: who this node is, where to log, the cluster's Redis. */
export interface CronLockHost {
  readonly nodeId: string;
  readonly logger: Logger;
  readonly config: { readonly cluster: EngineConfig['cluster'] };
}

/**
 * The lock named by the module's `adapter: {name, config?}` block (default `kv`). `redis` takes
 * `{redis_url?, lock_ttl_ms?}`, connects before returning (an unreachable Redis fails the
 * module's start, as in the original) and keys everything under the cluster's key prefix. A
 * name this build does not implement, or a bad option, throws saying what is wrong.
 */
export async function createCronLock(adapter: unknown, host: CronLockHost): Promise<CronLock> {
  const block = isRecord(adapter) ? adapter : {};
  const name = block['name'] ?? 'kv';
  const options = isRecord(block['config']) ? block['config'] : {};
  if (name === 'kv') {
    const ttlMs = options['lock_ttl_ms'];
    return new MemoryCronLock(typeof ttlMs === 'number' ? ttlMs : DEFAULT_LOCK_TTL_MS, host.nodeId);
  }
  if (name === 'redis') {
    const lockTtlMs = options['lock_ttl_ms'] ?? DEFAULT_LOCK_TTL_MS;
    if (typeof lockTtlMs !== 'number' || !Number.isInteger(lockTtlMs) || lockTtlMs < MIN_LOCK_TTL_MS) {
      throw new Error(
        `iii-cron: adapter redis: lock_ttl_ms must be a whole number of milliseconds, at least ${MIN_LOCK_TTL_MS}, got ${JSON.stringify(lockTtlMs)}`,
      );
    }
    const target = redisTarget('iii-cron', options, host.config.cluster);
    const redis = await connectRedis(target, `iii:${host.nodeId}:cron`, host.logger);
    return new RedisCronLock(redis, {
      nodeId: host.nodeId,
      keyPrefix: target.keyPrefix,
      lockTtlMs,
      logger: host.logger,
    });
  }
  throw new Error(
    `iii-cron: adapter '${String(name)}' is not supported by this build; supported adapters: ${SUPPORTED_CRON_ADAPTERS.join(', ')}`,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
