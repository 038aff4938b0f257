import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import type { QueueAdapter, QueueSpec } from './adapters/adapter';
import { QueueErrorCode } from './errors';
import { deliveryCall, newJob } from './jobs';
import { namedQueueKey } from './names';
import type { NamedQueueSettings, QueueSettings } from './settings';

/**
 * The configured function queues (`queue_configs`, plus `default`): `engine::queue::enqueue`
 * puts a message on one, and its consumer calls the message's `function_id` with its `data`.
 */
export class NamedQueues {
  constructor(
    private readonly host: ModuleHost,
    private readonly adapter: QueueAdapter,
    private readonly settings: QueueSettings,
  ) {}

  async start(): Promise<void> {
    for (const queue of this.settings.named.values()) await this.open(queue);
  }

  /**
   * Hot reload of `queue_configs`: a changed queue takes its new policy from its next delivery,
   * a new queue opens; messages queued or in flight are untouched. Resolves with the names of
   * queues no longer configured: they keep running until a restart.
   */
  async reconfigure(named: ReadonlyMap<string, NamedQueueSettings>): Promise<string[]> {
    for (const [name, queue] of named) {
      const current = this.settings.named.get(name);
      if (current && isDeepStrictEqual(current, queue)) continue;
      this.settings.named.set(name, queue);
      if (current) await this.adapter.declare(this.spec(queue));
      else await this.open(queue);
    }
    return [...this.settings.named.keys()].filter((name) => !named.has(name));
  }

  private async open(queue: NamedQueueSettings): Promise<void> {
    await this.adapter.declare(this.spec(queue));
    await this.adapter.startConsumer(namedQueueKey(queue.name), async (job) => {
      await this.host.invoke(deliveryCall(job));
    });
  }

  get(name: string): NamedQueueSettings | undefined {
    return this.settings.named.get(name);
  }

  all(): Iterable<NamedQueueSettings> {
    return this.settings.named.values();
  }

  /** `engine::queue::enqueue {queue, function_id, data, messageReceiptId, traceparent?, baggage?}`. */
  async enqueue(input: Input): Promise<Json> {
    const name = input.string('queue');
    const functionId = input.string('function_id');
    const data = input.raw('data') ?? null;
    const queue = this.settings.named.get(name);
    if (!queue) {
      const known = [...this.settings.named.keys()].join(', ');
      throw new EngineError(
        QueueErrorCode.queueNotFound,
        `Queue '${name}' not found; configured queues: ${known} (add it under queue_configs)`,
      );
    }
    const id = input.optString('messageReceiptId') ?? randomUUID();
    const job = newJob(
      {
        id,
        functionId,
        data,
        group: queue.policy.ordering === 'fifo' ? groupOf(queue.name, queue.messageGroupField ?? '', data) : undefined,
        traceparent: input.optString('traceparent'),
        baggage: input.optString('baggage'),
      },
      this.settings.limits.maxMessageBytes,
    );
    await this.adapter.enqueue(namedQueueKey(name), job);
    return { messageReceiptId: id };
  }

  private spec(queue: NamedQueueSettings): QueueSpec {
    return {
      name: namedQueueKey(queue.name),
      source: { kind: 'named', queue: queue.name },
      label: queue.name,
      ...queue.policy,
      maxDepth: this.settings.limits.maxDepth,
      maxBytes: this.settings.limits.maxQueueBytes,
      overflow: 'reject',
      maxDeadLetters: this.settings.limits.maxDeadLetters,
    };
  }
}

/** The message group of a FIFO message: `data[field]`, which must be present and not null. */
function groupOf(queue: string, field: string, data: Json): string {
  const value = typeof data === 'object' && data !== null && !Array.isArray(data) ? data[field] : undefined;
  if (value === undefined || value === null) {
    throw new EngineError(
      QueueErrorCode.invalidMessage,
      `Queue '${queue}' is FIFO: data.${field} (its message_group_field) is required and must not be null`,
    );
  }
  // JSON text keeps 1 and "1" apart.
  return JSON.stringify(value);
}
