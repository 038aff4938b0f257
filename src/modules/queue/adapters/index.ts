import type { EngineConfig } from '../../../config/types';
import { redisTarget } from '../../../cluster/redis-target';
import type { Logger } from '../../../observability/logger';
import type { DeadLetter, QueueAdapter } from './adapter';
import { BullmqQueueAdapter } from './bullmq';
import { FileQueueJournal } from './journal';
import { MemoryQueueAdapter } from './memory';
import { RabbitmqQueueAdapter } from './rabbitmq';
import { rabbitmqOptions } from './rabbitmq-options';

/** The original's default directory for the builtin adapter's `file_based` store (shared with iii-state's). */
const DEFAULT_FILE_PATH = 'kv_store_data.db';

/** Adapter names this build can run (`bullmq` is an alias of `redis`); bridge is refused. */
export const SUPPORTED_ADAPTERS = ['builtin', 'redis', 'bullmq', 'rabbitmq'] as const;

export interface AdapterHooks {
  /** A dead letter was pushed out by the queue's `maxDeadLetters`. */
  deadLetterDropped(queue: string, dropped: DeadLetter): void;
}

/** What a networked adapter needs from the engine besides its name. */
export interface AdapterContext {
  logger: Logger;
  nodeId: string;
  /** The cluster's Redis URL (if any) and key prefix: the `redis` adapter's defaults. */
  cluster: EngineConfig['cluster'];
  /** `adapter.config` as written (`redis_url` overrides the cluster's URL). */
  options?: Record<string, unknown> | null;
}

/** The adapter named by `adapter.name`; an unsupported name throws, listing the supported ones. */
export function createQueueAdapter(name: string, hooks: AdapterHooks, context: AdapterContext): QueueAdapter {
  const dropped = (queue: string, letter: DeadLetter) => hooks.deadLetterDropped(queue, letter);
  if (name === 'builtin') {
    const options = context.options ?? {};
    if (options['store_method'] !== 'file_based') return new MemoryQueueAdapter(dropped);
    const filePath = options['file_path'];
    return new MemoryQueueAdapter(dropped, FileQueueJournal.open(typeof filePath === 'string' ? filePath : DEFAULT_FILE_PATH, context.logger));
  }
  if (name === 'redis' || name === 'bullmq') {
    return new BullmqQueueAdapter({
      ...redisTarget('iii-queue', context.options, context.cluster),
      connectionName: `iii:${context.nodeId}:queue`,
      logger: context.logger,
      onDeadLetterDropped: dropped,
    });
  }
  if (name === 'rabbitmq') return new RabbitmqQueueAdapter(rabbitmqOptions(context, dropped));
  throw new Error(`iii-queue: adapter '${name}' is not supported yet; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}`);
}
