import WebSocket from 'ws';
import type { ChannelManager } from '../channels';
import type { ChannelRef } from '../../protocol/messages';

/** How often channels with a pending worker end are looked at, in milliseconds. */
export const CHANNEL_WATCH_INTERVAL_MS = 5;

type WorkerEnd = 'reader' | 'writer';

interface Watch {
  channelId: string;
  end: WorkerEnd;
  onConnected: () => void;
}

/**
 * The engine's side of a request's two data channels. The ChannelManager only serves WebSocket
 * ends, so the engine connects its end over loopback to its own worker port, and only once the
 * worker has connected its end (most handlers answer with a value and never touch the channels;
 * two WebSocket handshakes per request would cost more than the request itself).
 */
export class ChannelLink {
  private readonly watches = new Set<Watch>();
  /** The engine-side channel sockets still open, closed with the module. */
  private readonly sockets = new Set<WebSocket>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channels: ChannelManager,
    /** `ws://host:port` of a worker listener; read at connect time (ports are bound after start). */
    private readonly baseUrl: () => string,
  ) {}

  /** Calls `onConnected` once the worker's `end` of the channel is connected; returns a cancel. */
  whenWorkerConnects(channelId: string, end: WorkerEnd, onConnected: () => void): () => void {
    const watch: Watch = { channelId, end, onConnected };
    this.watches.add(watch);
    this.timer ??= setInterval(() => this.tick(), CHANNEL_WATCH_INTERVAL_MS).unref();
    return () => this.forget(watch);
  }

  /** A WebSocket on the engine's end of a channel (`ref` is the ref the engine keeps). */
  open(ref: ChannelRef): WebSocket {
    const url = `${this.baseUrl()}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=${ref.direction}`;
    const socket = new WebSocket(url, { perMessageDeflate: false });
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    return socket;
  }

  close(): void {
    this.watches.clear();
    clearInterval(this.timer);
    this.timer = undefined;
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
  }

  private tick(): void {
    for (const watch of this.watches) {
      const stats = this.channels.stats(watch.channelId);
      // A channel that is over (expired, closed) will never see the worker: stop watching.
      if (!stats) this.forget(watch);
      else if (stats[watch.end] !== 'waiting') {
        this.forget(watch);
        watch.onConnected();
      }
    }
  }

  private forget(watch: Watch): void {
    this.watches.delete(watch);
    if (this.watches.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
