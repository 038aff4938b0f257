import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../../observability/logger';
import type { Channel } from './channel';
import type { ChannelReaderEnd, ChannelWriterEnd } from './channel-end';
import type { ChannelItem } from './channel-item';
import { toChannelItem } from './channel-item';
import type { ChannelCloseKind } from './close-codes';

/**
 * Starts a close handshake. A paused socket is resumed first, or it would never read the peer's
 * Close reply and would hang until ws's 30 s close timeout.
 */
export function closeSocket(ws: WebSocket, why: ChannelCloseKind): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.isPaused) ws.resume();
  ws.close(why.code, why.reason);
}

/** A channel's writer on a WebSocket: messages in, TCP back-pressure by pausing the socket. */
export class WsWriterEnd implements ChannelWriterEnd {
  private failed = false;

  constructor(
    private readonly ws: WebSocket,
    channel: Channel,
    log: () => Logger,
  ) {
    ws.on('message', (data: RawData, isBinary: boolean) => channel.writerItem(toChannelItem(data, isBinary)));
    ws.on('error', (err: Error) => {
      this.failed = true;
      log().debug({ err: err.message }, 'writer socket error');
    });
    // 1006: the socket went away without a Close frame.
    ws.on('close', (code: number) => channel.writerClosed(!this.failed && code !== 1006));
  }

  pause(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.pause();
  }

  resume(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.resume();
  }

  close(why: ChannelCloseKind): void {
    closeSocket(this.ws, why);
  }
}

/** A channel's reader on a WebSocket; anything it sends is ignored, as in the reference engine. */
export class WsReaderEnd implements ChannelReaderEnd {
  constructor(
    private readonly ws: WebSocket,
    channel: Channel,
    log: () => Logger,
  ) {
    ws.on('error', (err: Error) => log().debug({ err: err.message }, 'reader socket error'));
    ws.on('close', () => channel.readerClosed());
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(item: ChannelItem, done: (err?: Error) => void): void {
    this.ws.send(item.data, { binary: item.binary }, done);
  }

  close(why: ChannelCloseKind): void {
    closeSocket(this.ws, why);
  }
}
