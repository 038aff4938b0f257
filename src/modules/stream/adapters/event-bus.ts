import type { StreamEvent } from '../events';

export type StreamEventHandler = (event: StreamEvent) => void;

/**
 * How stream events reach the client connections: separate from storage, because with Redis
 * (next issue) every node subscribes and forwards to its own clients, whoever wrote.
 */
export interface StreamEventBus {
  publish(event: StreamEvent): Promise<void>;
  /** Returns the function that unsubscribes `handler`. */
  subscribe(handler: StreamEventHandler): () => void;
  close(): Promise<void>;
}
