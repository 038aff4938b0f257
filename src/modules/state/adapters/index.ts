import type { EngineConfig } from '../../../config/types';
import type { Logger } from '../../../observability/logger';
import type { StateConfig } from '../config';
import type { StateAdapter } from './adapter';
import { BridgeStateAdapter } from './bridge';
import { FileStateAdapter } from './file';
import { MemoryStateAdapter } from './memory';
import { RedisStateAdapter } from './redis';
import { redisTarget } from '../../../cluster/redis-target';

export type { StateAdapter, StateUpdateOutcome } from './adapter';

/** Adapter names this build implements. */
export const SUPPORTED_ADAPTERS = ['kv', 'redis', 'bridge'] as const;
const STORE_METHODS = ['in_memory', 'file_based'] as const;
/** The original's default directory for `file_based`, relative to the working directory. */
const DEFAULT_FILE_PATH = 'kv_store_data.db';
/** The original's default `bridge_url`. */
const DEFAULT_BRIDGE_URL = 'ws://localhost:49134';

/** What an adapter may need from the engine besides its own config block. */
export interface StateAdapterContext {
  logger: Logger;
  nodeId: string;
  /** The cluster's Redis URL (if any) and key prefix: the `redis` adapter's defaults. */
  cluster: EngineConfig['cluster'];
}

/** The backend named by `adapter.name`; an unknown name or store method throws, listing the known ones. */
export function createStateAdapter(
  config: StateConfig,
  { logger, nodeId, cluster }: StateAdapterContext,
): StateAdapter {
  const { name, options } = config.adapter;
  if (name === 'redis') {
    return new RedisStateAdapter({
      ...redisTarget('iii-state', options, cluster),
      connectionName: `iii:${nodeId}:state`,
      logger,
    });
  }
  if (name === 'bridge') {
    const token = typeof options['auth_token'] === 'string' ? options['auth_token'] : process.env['III_BRIDGE_TOKEN'];
    const url = typeof options['bridge_url'] === 'string' ? options['bridge_url'] : DEFAULT_BRIDGE_URL;
    return new BridgeStateAdapter({ url, nodeId, logger, ...(token ? { token } : {}) });
  }
  if (name !== 'kv') {
    throw new Error(
      `iii-state: adapter '${name}' is not supported; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}.`,
    );
  }
  const storeMethod = options['store_method'] ?? 'in_memory';
  if (storeMethod === 'in_memory') {
    logger.info(
      'iii-state keeps its data in memory only (adapter kv, store_method in_memory): it is lost when the engine stops.',
    );
    return new MemoryStateAdapter();
  }
  if (storeMethod === 'file_based') {
    const filePath = options['file_path'];
    return new FileStateAdapter({ directory: typeof filePath === 'string' ? filePath : DEFAULT_FILE_PATH, logger });
  }
  throw new Error(
    `iii-state: adapter kv has no store_method ${JSON.stringify(storeMethod)}; use one of: ${STORE_METHODS.join(', ')}.`,
  );
}
