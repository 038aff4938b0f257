import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { Input } from '../input';
import type { QueueAdapter, QueueCounts } from './adapters/adapter';
import type { CatalogEntry, QueueCatalog } from './catalog';
import { QueueErrorCode } from './errors';

/** Largest page `engine::queue::dlq_messages` returns; a larger `limit` is clamped to it. */
export const MAX_DLQ_PAGE = 1000;
const DEFAULT_DLQ_PAGE = 50;

export type InspectionHandler = (input: Input) => Promise<Json>;

/**
 * The dead-letter and inspection functions of iii-modules.md §6.4, with the original's shapes
 * and error codes. An unknown name is `queue_not_found` (ours; the original answers as if empty).
 */
export function inspectionFunctions(
  catalog: QueueCatalog,
  adapter: QueueAdapter,
): Record<string, [string, InspectionHandler]> {
  const find = (name: string): CatalogEntry => {
    const entry = catalog.resolve(name);
    if (!entry)
      throw new EngineError(
        QueueErrorCode.queueNotFound,
        `No queue or topic named '${name}'; known: ${catalog.describe()}`,
      );
    return entry;
  };
  const totals = async (entry: CatalogEntry): Promise<QueueCounts> => {
    const sum: QueueCounts = { waiting: 0, delayed: 0, active: 0, deadLetters: 0 };
    for (const counts of await Promise.all(entry.queues.map((q) => adapter.counts(q)))) {
      sum.waiting += counts.waiting;
      sum.delayed += counts.delayed;
      sum.active += counts.active;
      sum.deadLetters += counts.deadLetters;
    }
    return sum;
  };
  /** Runs an adapter operation, reporting its failure under the function's own code. */
  const guarded = async <T>(code: string, what: () => Promise<T>): Promise<T> => {
    try {
      return await what();
    } catch (err) {
      const cause = EngineError.from(err);
      throw cause.code === QueueErrorCode.queueNotFound ? cause : new EngineError(code, cause.message);
    }
  };
  const queueName = (input: Input): string => {
    const name = input.optString('queue') ?? input.optString('topic') ?? '';
    if (name === '') throw new EngineError(QueueErrorCode.queueNotSet, '`queue` (or `topic`) is required');
    return name;
  };
  const messageId = (input: Input): string => {
    const id = input.optString('message_id') ?? '';
    if (id === '')
      throw new EngineError(
        QueueErrorCode.messageIdNotSet,
        '`message_id` is required (the `id` of an entry of engine::queue::dlq_messages)',
      );
    return id;
  };
  const topicName = (input: Input): string => {
    const name = input.optString('topic') ?? input.optString('queue') ?? '';
    if (name === '') throw new EngineError(QueueErrorCode.topicRequired, '`topic` (or `queue`) is required');
    return name;
  };
  const count = (input: Input, key: string, fallback: number): number => {
    const value = input.optNumber(key) ?? fallback;
    if (!Number.isInteger(value) || value < 0) throw input.fail(`field \`${key}\` must be an integer >= 0`);
    return value;
  };

  return {
    'engine::queue::list_topics': [
      'List named queues and durable topics',
      async () =>
        catalog.all().map((e) => ({ name: e.name, broker_type: e.brokerType, subscriber_count: e.consumerCount })),
    ],
    'engine::queue::topic_stats': [
      'Depth, consumers and dead letters of a queue or topic',
      async (input) => {
        const entry = find(topicName(input));
        const counts = await totals(entry);
        // waiting / delayed / in_flight are ours (the web console shows them); depth is the original's.
        return {
          depth: counts.waiting + counts.delayed,
          waiting: counts.waiting,
          delayed: counts.delayed,
          in_flight: counts.active,
          consumer_count: entry.consumerCount,
          dlq_depth: counts.deadLetters,
          config: entry.config,
        };
      },
    ],
    'engine::queue::dlq_topics': [
      'Dead-letter counts of every queue and topic',
      async () =>
        Promise.all(
          catalog.all().map(async (e) => ({
            topic: e.name,
            broker_type: e.brokerType,
            message_count: (await totals(e)).deadLetters,
          })),
        ),
    ],
    'engine::queue::dlq_messages': [
      'Dead letters of a queue or topic, oldest first',
      async (input) => {
        const entry = find(topicName(input));
        const offset = count(input, 'offset', 0);
        const limit = Math.min(count(input, 'limit', DEFAULT_DLQ_PAGE), MAX_DLQ_PAGE);
        const pages = await Promise.all(entry.queues.map((q) => adapter.deadLetters(q, 0, offset + limit)));
        return pages
          .flat()
          .sort((a, b) => a.failedAtMs - b.failedAtMs)
          .slice(offset, offset + limit)
          .map((letter) => ({
            id: letter.job.id,
            payload: letter.job.data,
            error: letter.error,
            failed_at: Math.floor(letter.failedAtMs / 1000),
            retries: letter.attemptsMade,
            size_bytes: letter.job.sizeBytes,
          }));
      },
    ],
    'iii::queue::redrive': [
      'Move every dead letter of a queue or topic back to it',
      async (input) => {
        const name = queueName(input);
        return guarded(QueueErrorCode.redriveFailed, async () => {
          let redriven = 0;
          for (const queue of find(name).queues) redriven += await adapter.redriveAll(queue);
          return { queue: name, redriven };
        });
      },
    ],
    'iii::queue::redrive_message': [
      'Move one dead letter back to its queue',
      async (input) => {
        const name = queueName(input);
        const id = messageId(input);
        return guarded(QueueErrorCode.redriveMessageFailed, async () => {
          for (const queue of find(name).queues)
            if (await adapter.redrive(queue, id)) return { queue: name, message_id: id, redriven: 1 };
          return { queue: name, message_id: id, redriven: 0 };
        });
      },
    ],
    'iii::queue::discard_message': [
      'Delete one dead letter',
      async (input) => {
        const name = queueName(input);
        const id = messageId(input);
        return guarded(QueueErrorCode.discardMessageFailed, async () => {
          for (const queue of find(name).queues)
            if (await adapter.discard(queue, id)) return { queue: name, message_id: id, redriven: 1 };
          return { queue: name, message_id: id, redriven: 0 };
        });
      },
    ],
  };
}
