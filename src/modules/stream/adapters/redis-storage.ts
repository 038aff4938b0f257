import type { Redis } from 'ioredis';
import type { Json } from '../../../protocol/messages';
import { RedisHashStore } from '../../state/adapters/redis-hash-store';
import { closeRedis } from '../../../cluster/redis-target';
import { StreamErrorCode } from '../error-codes';
import type { ItemUpdate, StreamStorage, StreamSummary } from './storage';

/**
 * Stream items in Redis, shared by every node of a cluster: one hash per group,
 * `<prefix>stream:<stream>:<group>`, field = item id, value = JSON text (the original's layout
 * under our key prefix). In the key, `%` and `:` of the stream name are percent-encoded
 * (`%25`, `%3A`) so the first `:` after it always ends it: streams `a` and `a:b` stay apart
 * (in the original, `list_groups("a")` also returns the groups of `a:b`). Group ids are the
 * key's rest and need no encoding.
 *
 * Set and delete return the old value atomically (Lua), update is a compare-and-set loop (see
 * RedisHashStore); `list_groups` and `list_all` walk the keys with SCAN, never KEYS. `list` is
 * HVALS: oldest first while the hash is small, Redis's hash order once it grows.
 *
 * It owns its connection (the event bus publishes through it too) and closes it in `close`.
 */
export class RedisStreamStorage implements StreamStorage {
  private readonly hashes: RedisHashStore;

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {
    this.hashes = new RedisHashStore(redis, StreamErrorCode.update);
  }

  get(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    return this.hashes.get(this.hash(streamName, groupId), itemId);
  }

  set(streamName: string, groupId: string, itemId: string, value: Json): Promise<Json | undefined> {
    return this.hashes.set(this.hash(streamName, groupId), itemId, JSON.stringify(value));
  }

  delete(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    return this.hashes.delete(this.hash(streamName, groupId), itemId);
  }

  async update(streamName: string, groupId: string, itemId: string, ops: Json): Promise<ItemUpdate> {
    const { old, value, errors } = await this.hashes.update(this.hash(streamName, groupId), itemId, ops, (v) =>
      JSON.stringify(v),
    );
    return { oldValue: old, newValue: value, errors };
  }

  list(streamName: string, groupId: string): Promise<Json[]> {
    return this.hashes.values(this.hash(streamName, groupId));
  }

  async listGroups(streamName: string): Promise<string[]> {
    const base = this.hash(streamName, '');
    const keys = await this.hashes.hashesStartingWith(base);
    return keys.map((key) => key.slice(base.length)).sort();
  }

  async listAll(): Promise<StreamSummary[]> {
    const base = `${this.keyPrefix}stream:`;
    const streams = new Map<string, string[]>();
    for (const key of await this.hashes.hashesStartingWith(base)) {
      const rest = key.slice(base.length);
      const end = rest.indexOf(':');
      if (end < 0) continue; // not one of ours: every group key has the separator
      const id = decodeStreamName(rest.slice(0, end));
      const groups = streams.get(id) ?? [];
      groups.push(rest.slice(end + 1));
      streams.set(id, groups);
    }
    return [...streams.entries()]
      .map(([id, groups]) => ({ id, groups: groups.sort() }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  private hash(streamName: string, groupId: string): string {
    return `${this.keyPrefix}stream:${encodeStreamName(streamName)}:${groupId}`;
  }
}

function encodeStreamName(name: string): string {
  return name.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

function decodeStreamName(encoded: string): string {
  return encoded.replace(/%25|%3A/g, (c) => (c === '%25' ? '%' : ':'));
}
