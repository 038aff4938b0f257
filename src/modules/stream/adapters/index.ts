import type { EngineConfig } from '../../../config/types';
import { redisConnection } from '../../../cluster/redis-connection';
import type { Logger } from '../../../observability/logger';
import { closeRedis, connectRedis, redisTarget } from '../../../cluster/redis-target';
import { DEFAULT_BRIDGE_TIMEOUT_MS } from '../../bridge';
import { BridgeStreamStorage } from './bridge-storage';
import type { StreamEventBus } from './event-bus';
import { LocalEventBus } from './local-event-bus';
import { FileStreamStorage } from './file-storage';
import { MemoryStreamStorage } from './memory-storage';
import { RedisEventBus } from './redis-event-bus';
import { RedisStreamStorage } from './redis-storage';
import type { StreamStorage } from './storage';
import type { StreamMirror } from './mirror';

export type { StreamEventBus, StreamEventHandler } from './event-bus';
export type { StreamMirror } from './mirror';
export type { ItemUpdate, StreamStorage, StreamSummary } from './storage';

/** The `adapter` block of the `iii-stream` config (iii-modules.md §1.5, §9.1). */
export interface StreamAdapterConfig {
  name: string;
  config?: Record<string, unknown> | null;
}

/** What a backend may need from the engine besides its own config block. */
export interface StreamAdapterContext {
  logger: Logger;
  nodeId: string;
  /** The cluster's Redis URL (if any) and key prefix: the `redis` adapter's defaults. */
  cluster: EngineConfig['cluster'];
}

/** A backend: storage and event fan-out, kept apart so a backend may share one and not the other. */
export interface StreamBackend {
  storage: StreamStorage;
  bus: StreamEventBus;
  /** Present when another engine holds the items and reports their changes (the bridge); see StreamMirror. */
  mirror?: StreamMirror;
}

/** Adapter names this build implements. */
export const SUPPORTED_ADAPTERS = ['kv', 'redis', 'bridge'] as const;

/** `kv` store methods. */
const SUPPORTED_STORE_METHODS = ['in_memory', 'file_based'] as const;
/** The original's default directory for `file_based` streams, relative to the working directory. */
const DEFAULT_FILE_PATH = './data/stream_store';
/** The original's default `bridge_url`. */
const DEFAULT_BRIDGE_URL = 'ws://localhost:49134';

/**
 * Builds (and for redis, connects) the backend named by the config; an unknown name or option
 * throws, naming what is supported. Close the bus before the storage: the redis bus publishes
 * through the storage's connection.
 */
export async function createStreamBackend(
  adapter: StreamAdapterConfig,
  context: StreamAdapterContext,
): Promise<StreamBackend> {
  if (adapter.name === 'redis') return createRedisBackend(adapter, context);
  if (adapter.name === 'bridge') return createBridgeBackend(adapter, context);
  if (adapter.name !== 'kv') {
    throw new Error(
      `iii-stream: adapter '${adapter.name}' is not supported by this build; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}`,
    );
  }
  const storeMethod = adapter.config?.['store_method'] ?? 'in_memory';
  if (!(SUPPORTED_STORE_METHODS as readonly unknown[]).includes(storeMethod)) {
    throw new Error(
      `iii-stream: kv store_method '${String(storeMethod)}' is not supported by this build; supported store methods: ${SUPPORTED_STORE_METHODS.join(', ')}`,
    );
  }
  if (storeMethod === 'file_based') {
    const filePath = adapter.config?.['file_path'];
    if (filePath !== undefined && (typeof filePath !== 'string' || filePath === '')) {
      throw new Error(
        `iii-stream: adapter.config.file_path must be a directory path (a non-empty string), not ${JSON.stringify(filePath)}`,
      );
    }
    return { storage: FileStreamStorage.open(filePath ?? DEFAULT_FILE_PATH), bus: new LocalEventBus() };
  }
  return { storage: new MemoryStreamStorage(), bus: new LocalEventBus() };
}

/** Storage and publishing share one data connection; the subscription needs its own. */
async function createRedisBackend(
  adapter: StreamAdapterConfig,
  { logger, nodeId, cluster }: StreamAdapterContext,
): Promise<StreamBackend> {
  const target = redisTarget('iii-stream', adapter.config, cluster);
  const { keyPrefix } = target;
  const data = await connectRedis(target, `iii:${nodeId}:stream`, logger);
  // A subscriber connection re-subscribes by itself after a reconnect; it must queue that. On a
  // Redis Cluster the bus uses a shard channel, which needs ioredis's sharded subscribers.
  const subscriber = redisConnection(
    target,
    `iii:${nodeId}:stream-sub`,
    logger,
    { enableOfflineQueue: true, maxRetriesPerRequest: null },
    { shardedSubscribers: true },
  );
  const bus = new RedisEventBus(data, subscriber, `${keyPrefix}stream::events`, logger);
  try {
    await bus.start();
  } catch (err) {
    subscriber.disconnect();
    await closeRedis(data);
    throw new Error(`iii-stream: cannot subscribe to stream events in Redis: ${(err as Error).message}`);
  }
  return { storage: new RedisStreamStorage(data, keyPrefix), bus };
}

/**
 * Items and events on another engine. Its reports reach this node's own clients only (a local
 * bus): in a cluster every node follows, for its own clients and bindings, what it needs.
 */
function createBridgeBackend(adapter: StreamAdapterConfig, { logger, nodeId }: StreamAdapterContext): StreamBackend {
  const options = adapter.config ?? {};
  const url = typeof options['bridge_url'] === 'string' ? options['bridge_url'] : DEFAULT_BRIDGE_URL;
  const token = typeof options['auth_token'] === 'string' ? options['auth_token'] : process.env['III_BRIDGE_TOKEN'];
  const timeoutMs = typeof options['timeout_ms'] === 'number' ? options['timeout_ms'] : DEFAULT_BRIDGE_TIMEOUT_MS;
  const storage = new BridgeStreamStorage({ url, nodeId, logger, timeoutMs, ...(token ? { token } : {}) });
  storage.start();
  return { storage, bus: new LocalEventBus(), mirror: storage };
}
