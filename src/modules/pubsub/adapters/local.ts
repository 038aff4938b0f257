import type { Json } from '../../../protocol/messages';
import type { PubSubAdapter, TopicHandler, Unsubscribe } from './adapter';

/**
 * The `local` adapter: topics live in this process. Unsubscribing removes only that
 * subscription (the original's local adapter drops every subscription of the topic).
 */
export class LocalPubSub implements PubSubAdapter {
  private readonly topics = new Map<string, Set<TopicHandler>>();

  async publish(topic: string, data: Json): Promise<void> {
    const handlers = this.topics.get(topic);
    if (!handlers) return;
    // A snapshot: a handler that unsubscribes while we iterate does not skip its neighbours.
    for (const handler of [...handlers]) handler(data);
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<Unsubscribe> {
    let handlers = this.topics.get(topic);
    if (!handlers) {
      handlers = new Set();
      this.topics.set(topic, handlers);
    }
    // Each subscription is its own entry, even when two bindings share one function.
    const entry: TopicHandler = (data) => handler(data);
    handlers.add(entry);
    return async () => {
      const current = this.topics.get(topic);
      if (!current?.delete(entry)) return;
      if (current.size === 0) this.topics.delete(topic);
    };
  }

  async close(): Promise<void> {
    this.topics.clear();
  }
}
