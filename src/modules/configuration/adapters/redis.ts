import type { Redis } from 'ioredis';
import { closeRedis, connectRedis, type RedisTarget } from '../../../cluster/redis-target';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { RedisHashStore } from '../../state/adapters/redis-hash-store';
import { ConfigurationErrorCode } from '../errors';
import type { ConfigurationMeta, ConfigurationStore } from './store';

export interface RedisConfigurationOptions extends RedisTarget {
  connectionName: string;
  logger: Logger;
}

/**
 * The cluster's store (ours; the default in cluster mode): two hashes under the cluster's key
 * prefix, `configuration:values` (id -> value JSON) and `configuration:meta` (id -> name,
 * description, schema, metadata), so every node reads the same values and knows every schema
 * any node's worker registered. Each write is one atomic script returning what it replaced.
 */
export class RedisConfigurationStore implements ConfigurationStore {
  private redis: Redis | undefined;
  private hashes: RedisHashStore | undefined;

  constructor(private readonly options: RedisConfigurationOptions) {}

  async open(): Promise<void> {
    this.redis = await connectRedis(this.options, this.options.connectionName, this.options.logger);
    this.hashes = new RedisHashStore(this.redis, ConfigurationErrorCode.adapterError);
  }

  async close(): Promise<void> {
    const redis = this.redis;
    this.redis = undefined;
    this.hashes = undefined;
    if (redis) await closeRedis(redis);
  }

  async meta(id: string): Promise<ConfigurationMeta | undefined> {
    return (await this.store().get(this.metaHash, id)) as ConfigurationMeta | undefined;
  }

  async putMeta(id: string, meta: ConfigurationMeta): Promise<boolean> {
    return (await this.store().set(this.metaHash, id, JSON.stringify(meta))) !== undefined;
  }

  async value(id: string): Promise<Json | undefined> {
    return this.store().get(this.valueHash, id);
  }

  async putValue(id: string, value: Json): Promise<Json | undefined> {
    return this.store().set(this.valueHash, id, JSON.stringify(value));
  }

  adopt(): void {
    // Nothing changes outside the engine here.
  }

  async remove(id: string): Promise<{ meta?: ConfigurationMeta; value?: Json } | undefined> {
    const meta = (await this.store().delete(this.metaHash, id)) as ConfigurationMeta | undefined;
    const value = await this.store().delete(this.valueHash, id);
    if (meta === undefined && value === undefined) return undefined;
    return { ...(meta === undefined ? {} : { meta }), ...(value === undefined ? {} : { value }) };
  }

  async entries(): Promise<Array<{ id: string; meta?: ConfigurationMeta }>> {
    const [metas, valueIds] = await Promise.all([
      this.store().fields(this.metaHash),
      this.store().fieldNames(this.valueHash),
    ]);
    const byId = new Map<string, ConfigurationMeta | undefined>(valueIds.map((id) => [id, undefined]));
    for (const [id, meta] of metas) byId.set(id, meta as unknown as ConfigurationMeta);
    return [...byId].map(([id, meta]) => (meta === undefined ? { id } : { id, meta }));
  }

  private get metaHash(): string {
    return `${this.options.keyPrefix}configuration:meta`;
  }

  private get valueHash(): string {
    return `${this.options.keyPrefix}configuration:values`;
  }

  private store(): RedisHashStore {
    if (!this.hashes) throw new Error('the redis configuration store is not open');
    return this.hashes;
  }
}
