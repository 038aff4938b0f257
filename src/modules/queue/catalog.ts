import type { Json } from '../../protocol/messages';
import type { DurableTopics } from './durable-topics';
import type { NamedQueues } from './named-queues';
import { namedQueueKey } from './names';

/** A name the inspection functions accept: a named queue or a durable topic. */
export interface CatalogEntry {
  name: string;
  /** `function_queue` for a named queue, the adapter name for a topic (as the original). */
  brokerType: string;
  /** The adapter queues holding its messages. */
  queues: string[];
  /** Named queue: its concurrency (as the original); topic: its live bindings. */
  consumerCount: number;
  config: Json;
}

/**
 * Resolves public names to adapter queues. A configured named queue wins over a topic of the
 * same name (as the original); a topic exists once someone subscribed to or published on it.
 */
export class QueueCatalog {
  constructor(
    private readonly named: NamedQueues,
    private readonly topics: DurableTopics,
    private readonly adapterName: string,
  ) {}

  resolve(name: string): CatalogEntry | undefined {
    const queue = this.named.get(name);
    if (queue) {
      return {
        name,
        brokerType: 'function_queue',
        queues: [namedQueueKey(name)],
        consumerCount: queue.policy.concurrency,
        config: queue.config,
      };
    }
    if (!this.topics.knows(name)) return undefined;
    return {
      name,
      brokerType: this.adapterName,
      queues: this.topics.queuesOf(name),
      consumerCount: this.topics.subscriberCount(name),
      config: this.topics.configOf(name),
    };
  }

  all(): CatalogEntry[] {
    const names = [...[...this.named.all()].map((q) => q.name), ...this.topics.topicNames()];
    return [...new Set(names)].map((name) => this.resolve(name)!);
  }

  /** Names for "not found" messages. */
  describe(): string {
    const names = this.all().map((entry) => entry.name);
    return names.length > 0 ? names.join(', ') : '(none)';
  }
}
