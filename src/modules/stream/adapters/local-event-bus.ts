import type { StreamEvent } from '../events';
import type { StreamEventBus, StreamEventHandler } from './event-bus';

/** Fan-out within this process: every subscriber gets every event, synchronously, in order. */
export class LocalEventBus implements StreamEventBus {
  private readonly handlers = new Set<StreamEventHandler>();

  async publish(event: StreamEvent): Promise<void> {
    for (const handler of this.handlers) handler(event);
  }

  subscribe(handler: StreamEventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
