import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { ChannelRef } from '../../protocol/messages';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Logger } from '../../observability/logger';
import { Channel, closeSocket, type ChannelStats } from './channel';
import { parseChannelUrl, type ChannelDirection } from './channel-url';
import { ChannelClose } from './close-codes';
import { clampBufferSize, resolveChannelOptions, type ChannelOptions, type ResolvedChannelOptions } from './options';
import { rejectUpgrade } from './reject-upgrade';

/**
 * The engine's data-channel broker (protocol §5): creates channels for `engine::channels::create`,
 * serves `/ws/channels/<id>` upgrades on a worker port, and expires channels nobody connects to
 * (the reference engine leaks them).
 */
export class ChannelManager {
  private readonly opts: ResolvedChannelOptions;
  private readonly log: Logger;
  private readonly channels = new Map<string, Channel>();
  /** Every upgraded channel socket until it closes, extra and finishing ones included. */
  private readonly sockets = new Set<WebSocket>();
  private readonly wss: WebSocketServer;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(opts: Partial<ChannelOptions> = {}) {
    this.opts = resolveChannelOptions(opts);
    this.log = this.opts.logger.child({ module: 'channels' });
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.opts.maxMessageBytes,
      clientTracking: false,
    });
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** A new channel; both refs carry the same id and access key, only `direction` differs. */
  create(bufferSize?: number): { writer: ChannelRef; reader: ChannelRef } {
    if (this.closed) throw new EngineError(ErrorCode.shuttingDown, 'Channels are closed: the engine is shutting down');
    const channel_id = randomUUID();
    const access_key = randomUUID();
    const size = clampBufferSize(bufferSize, this.opts.defaultBufferMessages, this.opts.maxBufferMessages);
    const channel = new Channel({
      id: channel_id,
      key: access_key,
      bufferSize: size,
      createdAtMs: Date.now(),
      logger: this.log,
      onOver: (over) => {
        if (this.channels.get(over.id) === over) this.channels.delete(over.id);
      },
    });
    this.channels.set(channel_id, channel);
    this.log.debug({ channel_id, buffer_size: size }, 'channel created');
    return {
      writer: { channel_id, access_key, direction: 'write' },
      reader: { channel_id, access_key, direction: 'read' },
    };
  }

  /**
   * If `req.url` is `/ws/channels/<id>?key=..&dir=read|write`, answers the request (upgrade, 400
   * or 404) and returns true; otherwise returns false and leaves the socket alone.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = parseChannelUrl(req.url ?? '');
    if (target.kind === 'other') return false;
    if (target.kind === 'invalid') {
      rejectUpgrade(socket, 400, target.reason);
      return true;
    }
    const channel = this.channels.get(target.channelId);
    if (!channel || !channel.keyMatches(target.key)) {
      rejectUpgrade(socket, 404, 'Channel not found');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, target.channelId, target.direction));
    return true;
  }

  /** Live channels: created and not yet over. */
  get size(): number {
    return this.channels.size;
  }

  /** A snapshot of one live channel, for introspection and tests. */
  stats(channelId: string): ChannelStats | undefined {
    return this.channels.get(channelId)?.stats(Date.now());
  }

  /** Closes every channel socket with 1001 and stops the sweep; later upgrades get 404. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const channel of [...this.channels.values()]) channel.abort(ChannelClose.shutdown);
    this.channels.clear();
    for (const ws of this.sockets) closeSocket(ws, ChannelClose.shutdown);
    this.wss.close();
  }

  private onConnection(ws: WebSocket, channelId: string, direction: ChannelDirection): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('error', () => undefined); // logged by the channel; a listener keeps it from throwing
    const channel = this.channels.get(channelId);
    if (!channel) {
      closeSocket(ws, ChannelClose.expired);
      return;
    }
    if (direction === 'write') channel.attachWriter(ws);
    else channel.attachReader(ws);
  }

  /** Removes channels whose two ends have not both connected within ttlMs of creation. */
  private sweep(nowMs: number): void {
    for (const channel of [...this.channels.values()]) {
      if (channel.bothConnected || nowMs - channel.createdAtMs < this.opts.ttlMs) continue;
      this.log.debug({ channel_id: channel.id }, 'channel expired');
      channel.abort(ChannelClose.expired);
    }
  }
}
