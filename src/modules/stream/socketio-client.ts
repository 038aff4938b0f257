import type { Socket } from 'socket.io';
import type { Json } from '../../protocol/messages';
import type { StreamEvent } from './events';
import { subscriptionRoom } from './socketio-rooms';
import type { Subscription } from './subscriptions';

/** What the stream port's Socket.IO server emits: event name `stream`, the §9.3 message. */
export interface StreamServerEvents {
  stream: (event: StreamEvent) => void;
}

/** Clients emit `join` and `leave` with a payload and an optional ack; both are read loosely. */
export interface StreamClientEvents {
  join: (...args: unknown[]) => void;
  leave: (...args: unknown[]) => void;
}

/** Per-socket data: what the auth function returned as `context` (null without one). */
export interface StreamSocketData {
  context: Json;
}

export type StreamSocket = Socket<StreamClientEvents, StreamServerEvents, Record<string, never>, StreamSocketData>;

/**
 * One Socket.IO client of the stream port: its subscriptions, the rooms they put it in, and the
 * bound on what it may leave unread. Joins and leaves are handled one at a time in arrival order,
 * as on the raw port.
 */
export class SocketIoClient {
  readonly subscriptions = new Map<string, Subscription<SocketIoClient>>();
  /** Subscriptions per room: the socket leaves a room with the last subscription that needs it. */
  private readonly rooms = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Bytes of packets engine.io holds for this socket that its transport has not taken yet. */
  private queuedBytes = 0;

  constructor(
    private readonly socket: StreamSocket,
    /** `max_send_buffer_bytes`: unsent bytes past which the connection is cut. */
    private readonly maxSendBufferBytes: number,
    private readonly onSlowClient: () => void,
  ) {
    // engine.io queues packets while the transport is still writing earlier ones (a client that
    // does not read keeps it busy) and hands the whole queue over at `flush`.
    socket.conn.on('packetCreate', (packet: { data?: unknown }) => this.queued(byteSize(packet.data)));
    socket.conn.on('flush', (packets: Array<{ data?: unknown }>) => {
      for (const packet of packets) this.queuedBytes -= byteSize(packet.data);
    });
  }

  get context(): Json {
    return this.socket.data.context;
  }

  get open(): boolean {
    return !this.closed && this.socket.connected;
  }

  /** Queues `task` behind the client's earlier events; its failure is handed to `onError`. */
  serialize(task: () => Promise<void>, onError: (err: unknown) => void): void {
    this.queue = this.queue.then(task).catch(onError);
  }

  /** Adds (or, under an id already held, replaces) a subscription and joins its room. */
  subscribe(subscription: Subscription<SocketIoClient>): void {
    this.unsubscribe(subscription.subscriptionId);
    this.subscriptions.set(subscription.subscriptionId, subscription);
    const room = roomOf(subscription);
    const count = this.rooms.get(room) ?? 0;
    this.rooms.set(room, count + 1);
    if (count === 0) void this.socket.join(room);
  }

  /** Removes a subscription (undefined when not held), leaving its room if no other needs it. */
  unsubscribe(subscriptionId: string): Subscription<SocketIoClient> | undefined {
    const subscription = this.subscriptions.get(subscriptionId);
    if (!subscription) return undefined;
    this.subscriptions.delete(subscriptionId);
    const room = roomOf(subscription);
    const count = (this.rooms.get(room) ?? 1) - 1;
    if (count > 0) {
      this.rooms.set(room, count);
    } else {
      this.rooms.delete(room);
      void this.socket.leave(room);
    }
    return subscription;
  }

  /** Marks the client gone and hands back every subscription it held (Socket.IO has left the rooms). */
  close(): Array<Subscription<SocketIoClient>> {
    this.closed = true;
    const gone = [...this.subscriptions.values()];
    this.subscriptions.clear();
    this.rooms.clear();
    return gone;
  }

  sendEvent(event: StreamEvent): void {
    if (this.open) this.socket.emit('stream', event);
  }

  private queued(bytes: number): void {
    this.queuedBytes += bytes;
    if (this.closed || this.queuedBytes <= this.maxSendBufferBytes) return;
    // Cut after the packet in hand is queued (this runs inside engine.io's send, and maybe inside
    // a room broadcast); `close(true)` discards the backlog instead of waiting for it to drain.
    this.closed = true;
    this.onSlowClient();
    queueMicrotask(() => this.socket.conn.close(true));
  }
}

function roomOf(subscription: Subscription<SocketIoClient>): string {
  return subscriptionRoom(subscription.streamName, subscription.groupId, subscription.id);
}

/** Size of an engine.io packet's data in bytes (strings as UTF-8). */
function byteSize(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}
