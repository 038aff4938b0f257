import type { Redis } from 'ioredis';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { StateErrorCode, serializeWithin } from '../errors';
import type { StateAdapter, StateUpdateOutcome } from './adapter';
import { RedisHashStore } from './redis-hash-store';
import { closeRedis, connectRedis, type RedisTarget } from '../../../cluster/redis-target';

export interface RedisStateOptions extends RedisTarget {
  /** Names the connection in CLIENT LIST, e.g. `iii:<node>:state`. */
  connectionName: string;
  logger: Logger;
}

/**
 * `iii-state` in Redis, shared by every node of a cluster: one hash per scope,
 * `<prefix>state:<scope>`, field = key, value = JSON text (the original's layout under our key
 * prefix). `set` and `delete` return the old value atomically (Lua); `update` is a
 * compare-and-set loop around the memory adapter's `applyUpdateOps` (see RedisHashStore).
 * `list` is HVALS: insertion order while the hash is small (listpack), Redis's hash order
 * once it grows (more than 128 keys, or a value over 64 bytes); the original promises no order.
 */
export class RedisStateAdapter implements StateAdapter {
  private redis: Redis | undefined;
  private hashes: RedisHashStore | undefined;

  constructor(private readonly options: RedisStateOptions) {}

  async open(): Promise<void> {
    this.redis = await connectRedis(this.options, this.options.connectionName, this.options.logger);
    this.hashes = new RedisHashStore(this.redis, StateErrorCode.update);
  }

  async close(): Promise<void> {
    const redis = this.redis;
    this.redis = undefined;
    this.hashes = undefined;
    if (redis) await closeRedis(redis);
  }

  async get(scope: string, key: string): Promise<Json | undefined> {
    return this.store().get(this.hash(scope), key);
  }

  async set(scope: string, key: string, value: Json, maxValueBytes: number | undefined): Promise<Json | undefined> {
    return this.store().set(this.hash(scope), key, serializeWithin(value, maxValueBytes));
  }

  async delete(scope: string, key: string): Promise<Json | undefined> {
    return this.store().delete(this.hash(scope), key);
  }

  async update(scope: string, key: string, ops: Json, maxValueBytes: number | undefined): Promise<StateUpdateOutcome> {
    const { old, value, errors } = await this.store().update(this.hash(scope), key, ops, (v) =>
      serializeWithin(v, maxValueBytes),
    );
    return { old_value: old, new_value: value, errors };
  }

  async list(scope: string): Promise<Json[]> {
    return this.store().values(this.hash(scope));
  }

  /** Sorted. */
  async listGroups(): Promise<string[]> {
    const base = this.hash('');
    const keys = await this.store().hashesStartingWith(base);
    return keys.map((key) => key.slice(base.length)).sort();
  }

  private hash(scope: string): string {
    return `${this.options.keyPrefix}state:${scope}`;
  }

  private store(): RedisHashStore {
    if (!this.hashes) throw new Error('the redis state adapter is not open');
    return this.hashes;
  }
}
