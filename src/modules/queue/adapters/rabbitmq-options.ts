import type { Logger } from '../../../observability/logger';
import type { DeadLetter } from './adapter';
import type { RabbitmqAdapterOptions } from './rabbitmq';

/** The original's default broker (iii-modules.md §6.5). */
export const DEFAULT_AMQP_URL = 'amqp://localhost:5672';

/** What the engine hands an adapter (the queue module's AdapterContext fits it). */
export interface RabbitmqContext {
  logger: Logger;
  nodeId: string;
  cluster: { keyPrefix: string };
  /** `adapter.config` as written. */
  options?: Record<string, unknown> | null;
}

/**
 * The adapter's options from `adapter: {name: rabbitmq, config: {amqp_url, priority_field}}`.
 * Queue names take the cluster's key prefix, so clusters can share a broker. The policy keys
 * of the original's block (`max_attempts`, `queue_mode`, ...) are read by the module's settings;
 * `prefetch_count` is our `concurrency`. A key of the wrong type throws, naming it.
 */
export function rabbitmqOptions(
  context: RabbitmqContext,
  onDeadLetterDropped: (queue: string, dropped: DeadLetter) => void,
): RabbitmqAdapterOptions {
  const config = context.options ?? {};
  const url = config['amqp_url'] ?? DEFAULT_AMQP_URL;
  if (typeof url !== 'string' || url === '') {
    throw new Error(`iii-queue: adapter.config.amqp_url must be an amqp:// URL, got ${JSON.stringify(url)}`);
  }
  const priorityField = config['priority_field'];
  if (
    priorityField !== undefined &&
    priorityField !== null &&
    (typeof priorityField !== 'string' || priorityField === '')
  ) {
    throw new Error(
      `iii-queue: adapter.config.priority_field must name a field of the message data, got ${JSON.stringify(priorityField)}`,
    );
  }
  const options: RabbitmqAdapterOptions = {
    url,
    namePrefix: context.cluster.keyPrefix,
    connectionName: `iii:${context.nodeId}:queue`,
    logger: context.logger,
    onDeadLetterDropped,
  };
  if (typeof priorityField === 'string') options.priorityField = priorityField;
  return options;
}
