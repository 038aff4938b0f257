import { timingSafeEqual } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../../observability/logger';
import { toChannelItem, type ChannelItem } from './channel-item';
import { ChannelClose, type ChannelCloseKind } from './close-codes';

/** One end of a channel: not yet connected, connected, or finished (it never comes back). */
export type ChannelEndState = 'waiting' | 'open' | 'done';

export interface ChannelStats {
  channelId: string;
  /** Capacity of the buffer, in messages. */
  bufferSize: number;
  /** Messages taken from the writer and not yet handed to the reader's socket, in flight included. */
  buffered: number;
  /** Of `buffered`, messages written to the reader socket whose write has not completed yet. */
  inFlight: number;
  /** Messages ws had already parsed from the writer's last socket read when the writer was paused. */
  readAhead: number;
  /** Payload bytes of `readAhead`. */
  readAheadBytes: number;
  /** Highest `buffered` seen so far; never above `bufferSize`. */
  peakBuffered: number;
  writer: ChannelEndState;
  reader: ChannelEndState;
  writerPaused: boolean;
  ageMs: number;
}

export interface ChannelInit {
  id: string;
  key: string;
  bufferSize: number;
  createdAtMs: number;
  logger: Logger;
  /** Called once when the channel is over (completed, dropped or aborted), to forget it. */
  onOver: (channel: Channel) => void;
}

/**
 * One single-writer, single-reader pipe of WebSocket messages (protocol §5).
 *
 * Memory is bounded: `buffer` never holds more than `bufferSize` messages, counting those written
 * to the reader socket until their write completes, so a slow reader holds up the writer rather
 * than filling the heap. When the buffer is full the writer socket is paused (TCP back-pressure).
 * Pausing a ws socket stops further reads but not the parsing of the read already in hand, so the
 * messages still in that read land in `readAhead`; it is bounded by one socket read (64 KiB) plus
 * the message that read completed. The writer resumes once `readAhead` is empty and a slot is free.
 */
export class Channel {
  readonly id: string;
  readonly bufferSize: number;
  readonly createdAtMs: number;

  private readonly key: Buffer;
  private readonly log: Logger;
  private readonly onOver: (channel: Channel) => void;

  private writer: WebSocket | undefined;
  private reader: WebSocket | undefined;
  private writerState: ChannelEndState = 'waiting';
  private readerState: ChannelEndState = 'waiting';
  /** The writer ended with a Close frame and no error (as opposed to vanishing or failing). */
  private writerFinished = false;
  private writerFailed = false;
  private writerPaused = false;

  private readonly buffer: ChannelItem[] = [];
  /** The first `inFlight` items of `buffer` are written to the reader socket, awaiting completion. */
  private inFlight = 0;
  private readonly readAhead: ChannelItem[] = [];
  private peakBuffered = 0;
  /** Set when nothing more will be delivered; the channel is then out of the manager's map. */
  private over = false;

  constructor(init: ChannelInit) {
    this.id = init.id;
    this.key = Buffer.from(init.key, 'utf8');
    this.bufferSize = init.bufferSize;
    this.createdAtMs = init.createdAtMs;
    this.log = init.logger.child({ channel_id: init.id });
    this.onOver = init.onOver;
  }

  /** Constant-time check of a presented access key. */
  keyMatches(presented: string): boolean {
    const candidate = Buffer.from(presented, 'utf8');
    return candidate.length === this.key.length && timingSafeEqual(candidate, this.key);
  }

  /** Both ends have connected at some point; such a channel no longer expires. */
  get bothConnected(): boolean {
    return this.writerState !== 'waiting' && this.readerState !== 'waiting';
  }

  attachWriter(ws: WebSocket): void {
    if (this.over || this.writerState !== 'waiting') {
      this.log.debug('extra writer socket closed');
      closeSocket(ws, ChannelClose.endTaken);
      return;
    }
    this.writer = ws;
    this.writerState = 'open';
    ws.on('message', (data: RawData, isBinary: boolean) => this.onWriterMessage(data, isBinary));
    ws.on('error', (err: Error) => {
      this.writerFailed = true;
      this.log.debug({ err: err.message }, 'writer socket error');
    });
    ws.on('close', (code: number) => this.onWriterClose(code));
    this.log.debug('writer connected');
  }

  attachReader(ws: WebSocket): void {
    if (this.over || this.readerState !== 'waiting') {
      this.log.debug('extra reader socket closed');
      closeSocket(ws, ChannelClose.endTaken);
      return;
    }
    this.reader = ws;
    this.readerState = 'open';
    // The reader only receives; anything it sends is ignored, as in the reference engine.
    ws.on('error', (err: Error) => this.log.debug({ err: err.message }, 'reader socket error'));
    ws.on('close', () => this.onReaderClose());
    this.log.debug('reader connected');
    this.pump();
    this.endReaderIfDrained();
  }

  /** Ends the channel now: closes whatever end is connected with `why` and drops buffered data. */
  abort(why: ChannelCloseKind): void {
    if (this.over) return;
    if (this.writer && this.writerState === 'open') closeSocket(this.writer, why);
    if (this.reader && this.readerState === 'open') closeSocket(this.reader, why);
    this.finish(why.reason);
  }

  stats(nowMs: number): ChannelStats {
    return {
      channelId: this.id,
      bufferSize: this.bufferSize,
      buffered: this.buffer.length,
      inFlight: this.inFlight,
      readAhead: this.readAhead.length,
      readAheadBytes: this.readAhead.reduce((sum, item) => sum + item.data.length, 0),
      peakBuffered: this.peakBuffered,
      writer: this.writerState,
      reader: this.readerState,
      writerPaused: this.writerPaused,
      ageMs: nowMs - this.createdAtMs,
    };
  }

  private onWriterMessage(data: RawData, isBinary: boolean): void {
    // After the channel is over the writer may still be read to finish its close handshake.
    if (this.over) return;
    const item = toChannelItem(data, isBinary);
    if (this.readAhead.length === 0 && this.buffer.length < this.bufferSize) this.accept(item);
    else this.readAhead.push(item);
    if (this.buffer.length >= this.bufferSize) this.pauseWriter();
    this.pump();
  }

  private onWriterClose(code: number): void {
    this.writerState = 'done';
    this.writer = undefined;
    this.writerPaused = false;
    // 1006: the socket went away without a Close frame.
    this.writerFinished = !this.writerFailed && code !== 1006;
    if (this.over) return;
    this.log.debug({ code, finished: this.writerFinished }, 'writer closed');
    this.endReaderIfDrained();
  }

  private onReaderClose(): void {
    this.readerState = 'done';
    this.reader = undefined;
    if (this.over) return;
    // The stream did not reach its end: what the writer still sends has nowhere to go.
    this.log.debug('reader went away before the end of the stream');
    if (this.writer && this.writerState === 'open') closeSocket(this.writer, ChannelClose.readerGone);
    this.finish('reader gone');
  }

  private accept(item: ChannelItem): void {
    this.buffer.push(item);
    if (this.buffer.length > this.peakBuffered) this.peakBuffered = this.buffer.length;
  }

  /** Hands every buffered item not yet in flight to the reader socket, in order. */
  private pump(): void {
    const reader = this.reader;
    if (this.over || !reader || this.readerState !== 'open' || reader.readyState !== WebSocket.OPEN) return;
    while (this.inFlight < this.buffer.length) {
      const item = this.buffer[this.inFlight++];
      reader.send(item.data, { binary: item.binary }, (err) => this.onDelivered(reader, err));
    }
  }

  /** A write to the reader completed (callbacks come in send order); frees its slot. */
  private onDelivered(reader: WebSocket, err: Error | undefined): void {
    // A failed write means the reader socket is closing; its 'close' handler ends the channel.
    if (err || this.over || reader !== this.reader) return;
    this.buffer.shift();
    this.inFlight--;
    while (this.readAhead.length > 0 && this.buffer.length < this.bufferSize) {
      this.accept(this.readAhead.shift() as ChannelItem);
    }
    if (this.writerPaused && this.readAhead.length === 0 && this.buffer.length < this.bufferSize) {
      this.resumeWriter();
    }
    this.pump();
    this.endReaderIfDrained();
  }

  /** Once the writer is done and everything it sent is delivered, closes the reader. */
  private endReaderIfDrained(): void {
    if (this.over || this.writerState !== 'done') return;
    if (this.buffer.length > 0 || this.readAhead.length > 0) return;
    if (!this.reader || this.readerState !== 'open') return;
    closeSocket(this.reader, this.writerFinished ? ChannelClose.complete : ChannelClose.writerGone);
    this.finish('delivered');
  }

  private pauseWriter(): void {
    if (this.writerPaused || !this.writer || this.writerState !== 'open') return;
    this.writer.pause();
    this.writerPaused = true;
  }

  private resumeWriter(): void {
    this.writerPaused = false;
    if (this.writer && this.writerState === 'open') this.writer.resume();
  }

  private finish(why: string): void {
    if (this.over) return;
    this.over = true;
    this.buffer.length = 0;
    this.readAhead.length = 0;
    this.inFlight = 0;
    this.log.debug({ why }, 'channel over');
    this.onOver(this);
  }
}

/**
 * Starts a close handshake. A paused socket is resumed first, or it would never read the peer's
 * Close reply and would hang until ws's 30 s close timeout.
 */
export function closeSocket(ws: WebSocket, why: ChannelCloseKind): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.isPaused) ws.resume();
  ws.close(why.code, why.reason);
}
