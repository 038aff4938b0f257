import WebSocket from 'ws';
import type { Json } from '../../protocol/messages';
import type { StreamEvent } from './events';
import type { Subscription } from './subscriptions';

/**
 * One WebSocket client of the stream port. Frames are handled one at a time in arrival order
 * (a join's handlers finish before a later leave is looked at). Sending never waits and never
 * grows without bound: past `max_send_buffer_bytes` unsent, the socket is cut.
 */
export class StreamClient {
  readonly subscriptions = new Map<string, Subscription<StreamClient>>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly socket: WebSocket,
    /** What the auth function returned as `context`; null without one. */
    readonly context: Json,
    /** `max_send_buffer_bytes`: unsent bytes past which the socket is cut. */
    private readonly maxSendBufferBytes: number,
    private readonly onSlowClient: () => void,
  ) {}

  get open(): boolean {
    return !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  /** Queues `task` behind the client's earlier frames; its failure is handed to `onError`. */
  serialize(task: () => Promise<void>, onError: (err: unknown) => void): void {
    this.queue = this.queue.then(task).catch(onError);
  }

  sendEvent(event: StreamEvent): void {
    this.sendText(JSON.stringify(event));
  }

  /** `{type:"error", error:{code, message}, subscriptionId?}` (ours: the original stays silent). */
  sendError(code: string, message: string, subscriptionId?: string): void {
    const frame: Record<string, Json> = { type: 'error', error: { code, message } };
    if (subscriptionId !== undefined) frame.subscriptionId = subscriptionId;
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    if (!this.open) return;
    this.socket.send(text);
    if (this.socket.bufferedAmount > this.maxSendBufferBytes) {
      // A close frame would queue behind the backlog it is meant to end, so the socket is cut.
      this.closed = true;
      this.onSlowClient();
      this.socket.terminate();
    }
  }

  markClosed(): void {
    this.closed = true;
  }

  terminate(): void {
    this.closed = true;
    this.socket.terminate();
  }
}
