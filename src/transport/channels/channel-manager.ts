import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { ChannelRef } from '../../protocol/messages';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Logger } from '../../observability/logger';
import { Channel, type ChannelStats } from './channel';
import type { ChannelEndSide } from './channel-end';
import { LocalReader, LocalWriter, type LocalReaderHandlers } from './local-ends';
import { WsReaderEnd, WsWriterEnd, closeSocket } from './ws-ends';
import { parseChannelUrl, type ChannelDirection, type ChannelTarget } from './channel-url';
import { ChannelClose } from './close-codes';
import { clampBufferSize, resolveChannelOptions, type ChannelOptions, type ResolvedChannelOptions } from './options';
import { randomUuid } from './random-id';
import { rejectUpgrade } from '../reject-upgrade';
import { ReleasedChannels } from './released-channels';

/** The config key of the open-channel bound, as refusals and `iii_limit_refusals_total` name it. */
const MAX_OPEN_KEY = 'engine.channels.max_open';

/** A concatenated string made flat (one piece), as randomUuid() makes its ids: they live as map keys. */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** Sends a worker's end of a channel this node does not hold to the node that does; false = unknown. */
export type ChannelForwarder = (target: ChannelTarget, req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/**
 * The engine's data-channel broker (protocol §5): creates channels for `engine::channels::create`,
 * serves `/ws/channels/<id>` upgrades on a worker port, gives the engine in-process ends
 * (`openLocalWriter`, `openLocalReader`), and expires channels nobody connects to (the reference
 * engine leaks them). A module that made a channel for a worker that never used it `release`s it.
 */
export class ChannelManager {
  private readonly opts: ResolvedChannelOptions;
  private readonly log: Logger;
  private readonly channels = new Map<string, Channel>();
  private readonly released: ReleasedChannels;
  /** Every upgraded channel socket until it closes, extra and finishing ones included. */
  private readonly sockets = new Set<WebSocket>();
  private readonly wss: WebSocketServer;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  /** Cluster mode: takes upgrades for channels another node owns (cluster/channel-relay.ts). */
  forwarder: ChannelForwarder | undefined;
  /** Drops a channel that is over; one function for all channels rather than a closure each. */
  private readonly forget = (over: Channel): void => {
    if (this.channels.get(over.id) === over) this.channels.delete(over.id);
  };

  constructor(opts: Partial<ChannelOptions> = {}) {
    this.opts = resolveChannelOptions(opts);
    this.log = this.opts.logger.child({ module: 'channels' });
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.opts.maxMessageBytes,
      clientTracking: false,
    });
    this.released = new ReleasedChannels(this.opts.releasedGraceMs, Date.now());
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** A new channel; both refs carry the same id and access key, only `direction` differs. */
  create(bufferSize?: number): { writer: ChannelRef; reader: ChannelRef } {
    if (this.closed) throw new EngineError(ErrorCode.shuttingDown, 'Channels are closed: the engine is shutting down');
    if (this.channels.size >= this.opts.maxOpen) {
      this.opts.onLimitRefused(MAX_OPEN_KEY);
      throw new EngineError(
        ErrorCode.limitExceeded,
        `This node holds ${this.opts.maxOpen} open data channels (${MAX_OPEN_KEY} = ${this.opts.maxOpen}): ` +
          'no new channel until some complete, are released or expire; retry later',
      );
    }
    const channel_id = this.opts.idPrefix === '' ? randomUuid() : flat(this.opts.idPrefix + randomUuid());
    const access_key = randomUuid();
    const size = clampBufferSize(bufferSize, this.opts.defaultBufferMessages, this.opts.maxBufferMessages);
    const channel = new Channel({
      id: channel_id,
      key: access_key,
      bufferSize: size,
      maxBufferBytes: this.opts.maxBufferBytes,
      createdAtMs: Date.now(),
      logger: this.log,
      onOver: this.forget,
    });
    this.channels.set(channel_id, channel);
    // Guarded: this runs twice per HTTP request, and an argument object costs even when unlogged.
    if (this.log.isLevelEnabled('debug')) this.log.debug({ channel_id, buffer_size: size }, 'channel created');
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
    const known = channel
      ? channel.keyMatches(target.key)
      : this.released.matches(target.channelId, target.key, Date.now());
    if (!known) {
      if (!this.forwarder?.(target, req, socket, head)) rejectUpgrade(socket, 404, 'Channel not found');
      return true;
    }
    // A released channel's late end is accepted and closed at once (onConnection finds no channel).
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, target.channelId, target.direction));
    return true;
  }

  /**
   * The engine's own writing end of the channel `ref` (a `write` ref), in process. Undefined when
   * the ref does not name a live channel or its writer is already taken.
   */
  openLocalWriter(ref: ChannelRef): LocalWriter | undefined {
    const channel = this.claimable(ref, 'write');
    if (!channel) return undefined;
    const end = new LocalWriter(channel);
    channel.attachWriter(end, false);
    return end;
  }

  /**
   * The engine's own reading end of the channel `ref` (a `read` ref), in process: `handlers` get
   * each message, then the end. Undefined when the ref does not name a live channel or its reader
   * is already taken.
   */
  openLocalReader(ref: ChannelRef, handlers: LocalReaderHandlers): LocalReader | undefined {
    const channel = this.claimable(ref, 'read');
    if (!channel) return undefined;
    const end = new LocalReader(channel, handlers);
    channel.attachReader(end, false);
    return end;
  }

  /**
   * Calls `cb` once when the `side` end of the channel attaches (at once if it has). Returns a
   * cancel; nothing is called for an unknown channel or one that ends first.
   */
  onAttached(channelId: string, side: ChannelEndSide, cb: () => void): () => void {
    const channel = this.channels.get(channelId);
    return channel ? channel.onAttached(side, cb) : () => undefined;
  }

  /**
   * Its creator is done with the channel: removed at once (in-process ends closed) if no
   * WebSocket end ever attached, since then nobody else can be using it; otherwise it runs to
   * its end as usual. Returns whether it was removed.
   */
  release(channelId: string): boolean {
    const channel = this.channels.get(channelId);
    if (!channel || !channel.unclaimed) return false;
    channel.abort(ChannelClose.released);
    this.released.add(channelId, channel.accessKey, Date.now());
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
    this.released.clear();
    for (const ws of this.sockets) closeSocket(ws, ChannelClose.shutdown);
    this.wss.close();
  }

  private onConnection(ws: WebSocket, channelId: string, direction: ChannelDirection): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('error', () => undefined); // logged by the channel; a listener keeps it from throwing
    const channel = this.channels.get(channelId);
    if (!channel) {
      closeSocket(ws, this.released.has(channelId) ? ChannelClose.released : ChannelClose.expired);
      return;
    }
    const side: ChannelEndSide = direction === 'write' ? 'writer' : 'reader';
    if (!channel.canAttach(side)) {
      channel.log().debug(`extra ${side} socket closed`);
      closeSocket(ws, ChannelClose.endTaken);
      return;
    }
    if (side === 'writer') channel.attachWriter(new WsWriterEnd(ws, channel, () => channel.log()), true);
    else channel.attachReader(new WsReaderEnd(ws, channel, () => channel.log()), true);
  }

  /** The live channel `ref` names, if its key matches and its `direction` end is free. */
  private claimable(ref: ChannelRef, direction: ChannelDirection): Channel | undefined {
    if (ref.direction !== direction) return undefined;
    const channel = this.channels.get(ref.channel_id);
    if (!channel || !channel.keyMatches(ref.access_key)) return undefined;
    return channel.canAttach(direction === 'write' ? 'writer' : 'reader') ? channel : undefined;
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
