import type { EngineConfig } from '../../../config/types';
import { redisTarget } from '../../../cluster/redis-target';
import type { Logger } from '../../../observability/logger';
import { DEFAULT_BRIDGE_TIMEOUT_MS } from '../../bridge';
import type { DeadLetter, QueueAdapter } from './adapter';
import { BridgeQueueAdapter } from './bridge';
import { BullmqQueueAdapter } from './bullmq';
import { FileQueueJournal } from './journal';
import { MemoryQueueAdapter } from './memory';
import { RabbitmqQueueAdapter } from './rabbitmq';
import { rabbitmqOptions } from './rabbitmq-options';

/** The original's default directory for the builtin adapter's `file_based` store (shared with iii-state's). */
const DEFAULT_FILE_PATH = 'kv_store_data.db';

/** The original's default `bridge_url`. */
const DEFAULT_BRIDGE_URL = 'ws://localhost:49134';

/** Adapter names this build can run (`bullmq` is an alias of `redis`). */
export const SUPPORTED_ADAPTERS = ['builtin', 'redis', 'bullmq', 'rabbitmq', 'bridge'] as const;

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
    return new MemoryQueueAdapter(
      dropped,
      FileQueueJournal.open(typeof filePath === 'string' ? filePath : DEFAULT_FILE_PATH, context.logger),
    );
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
  if (name === 'bridge') return new BridgeQueueAdapter(bridgeOptions(context));
  throw new Error(
    `iii-queue: adapter '${name}' is not supported yet; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}`,
  );
}

/** `bridge_url`, `auth_token` (default `III_BRIDGE_TOKEN`), and ours: `timeout_ms`, `serve_functions`. */
function bridgeOptions({
  logger,
  nodeId,
  options,
}: AdapterContext): ConstructorParameters<typeof BridgeQueueAdapter>[0] {
  const config = options ?? {};
  const token = typeof config['auth_token'] === 'string' ? config['auth_token'] : process.env['III_BRIDGE_TOKEN'];
  const url = typeof config['bridge_url'] === 'string' ? config['bridge_url'] : DEFAULT_BRIDGE_URL;
  const timeoutMs = config['timeout_ms'] ?? DEFAULT_BRIDGE_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new Error(
      `iii-queue: adapter.config.timeout_ms must be an integer >= 1 (milliseconds), got ${JSON.stringify(timeoutMs)}`,
    );
  }
  const serve = config['serve_functions'] ?? [];
  if (!Array.isArray(serve) || !serve.every((id) => typeof id === 'string' && id !== '')) {
    throw new Error(
      `iii-queue: adapter.config.serve_functions must be a list of function ids, got ${JSON.stringify(serve)}`,
    );
  }
  return { url, nodeId, logger, timeoutMs, serveFunctions: serve as string[], ...(token ? { token } : {}) };
}
