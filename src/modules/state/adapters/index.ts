import type { EngineConfig } from '../../../config/types';
import type { Logger } from '../../../observability/logger';
import type { StateConfig } from '../config';
import type { StateAdapter } from './adapter';
import { FileStateAdapter } from './file';
import { MemoryStateAdapter } from './memory';
import { RedisStateAdapter } from './redis';
import { redisTarget } from '../../../cluster/redis-target';

export type { StateAdapter, StateUpdateOutcome } from './adapter';

/** Adapter names this build implements (`bridge` is not implemented). */
export const SUPPORTED_ADAPTERS = ['kv', 'redis'] as const;
const STORE_METHODS = ['in_memory', 'file_based'] as const;
/** The original's default directory for `file_based`, relative to the working directory. */
const DEFAULT_FILE_PATH = 'kv_store_data.db';

/** What an adapter may need from the engine besides its own config block. */
export interface StateAdapterContext {
  logger: Logger;
  nodeId: string;
  /** The cluster's Redis URL (if any) and key prefix: the `redis` adapter's defaults. */
  cluster: EngineConfig['cluster'];
}

/** The backend named by `adapter.name`; an unknown name or store method throws, listing the known ones. */
export function createStateAdapter(config: StateConfig, { logger, nodeId, cluster }: StateAdapterContext): StateAdapter {
  const { name, options } = config.adapter;
  if (name === 'redis') {
    return new RedisStateAdapter({ ...redisTarget('iii-state', options, cluster), connectionName: `iii:${nodeId}:state`, logger });
  }
  if (name !== 'kv') {
    throw new Error(`iii-state: adapter '${name}' is not supported; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}.`);
  }
  const storeMethod = options['store_method'] ?? 'in_memory';
  if (storeMethod === 'in_memory') {
    logger.info('iii-state keeps its data in memory only (adapter kv, store_method in_memory): it is lost when the engine stops.');
    return new MemoryStateAdapter();
  }
  if (storeMethod === 'file_based') {
    const filePath = options['file_path'];
    return new FileStateAdapter({ directory: typeof filePath === 'string' ? filePath : DEFAULT_FILE_PATH, logger });
  }
  throw new Error(`iii-state: adapter kv has no store_method ${JSON.stringify(storeMethod)}; use one of: ${STORE_METHODS.join(', ')}.`);
}
