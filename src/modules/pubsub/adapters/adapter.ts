import type { Json } from '../../../protocol/messages';

/** Receives one published message; it must handle its own errors (delivery is fire-and-forget). */
export type TopicHandler = (data: Json) => void;

/** Removes one subscription, leaving the others on its topic. */
export type Unsubscribe = () => Promise<void>;

/**
 * Carries published messages to the subscriptions of their topic. `local` delivers within this
 * process; the Redis adapter (cluster issue) will deliver to every node.
 */
export interface PubSubAdapter {
  /** Hands `data` to every subscription of `topic`; resolves once handed over, not once handled. */
  publish(topic: string, data: Json): Promise<void>;
  subscribe(topic: string, handler: TopicHandler): Promise<Unsubscribe>;
  /** Drops every subscription. */
  close(): Promise<void>;
}
