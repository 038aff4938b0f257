import { sameSecret } from '../secret';
import type { Logger } from '../../observability/logger';
import type { ChannelEndSide, ChannelReaderEnd, ChannelWriterEnd } from './channel-end';
import type { ChannelItem } from './channel-item';
import type { ChannelCloseKind } from './close-codes';
import { ChannelClose } from './close-codes';

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
  /** Payload bytes of `buffered`. */
  bufferedBytes: number;
  /** Highest `bufferedBytes` seen so far; above `maxBufferBytes` only by a lone larger message. */
  peakBufferedBytes: number;
  writer: ChannelEndState;
  reader: ChannelEndState;
  writerPaused: boolean;
  ageMs: number;
}

export interface ChannelInit {
  id: string;
  key: string;
  bufferSize: number;
  /** Payload bytes the buffer holds before the writer is paused (`engine.channels.max_buffer_bytes`). */
  maxBufferBytes: number;
  createdAtMs: number;
  logger: Logger;
  /** Called once when the channel is over (completed, dropped or aborted), to forget it. */
  onOver: (channel: Channel) => void;
}

const NO_ITEMS: readonly ChannelItem[] = [];

/**
 * One single-writer, single-reader pipe of messages (protocol §5) between two ends, each a
 * WebSocket on the worker port or the engine's in-process end (channel-end.ts).
 *
 * Memory is bounded: `buffer` never holds more than `bufferSize` messages nor more than
 * `maxBufferBytes` of payload (unless one message alone is larger), counting those handed to the
 * reader until their delivery completes, so a slow reader holds up the writer rather than filling
 * the heap. When the buffer is full the writer is paused (TCP back-pressure for a socket).
 * Pausing a ws socket stops further reads but not the parsing of the read already in hand, so the
 * messages still in that read land in `readAhead`; it is bounded by one socket read (64 KiB) plus
 * the message that read completed. The writer resumes once `readAhead` is empty and the buffer has
 * a free slot and is below its byte bound.
 *
 * Most channels are never connected to (a handler that answers with a value ignores its request's
 * channels), so a fresh channel holds little more than its id and key: buffers, logger and attach
 * listeners are made when first needed.
 */
export class Channel {
  readonly id: string;
  readonly bufferSize: number;
  readonly maxBufferBytes: number;
  readonly createdAtMs: number;

  private readonly key: string;
  private readonly parentLog: Logger;
  private childLog: Logger | undefined;
  private readonly onOver: (channel: Channel) => void;

  private writer: ChannelWriterEnd | undefined;
  private reader: ChannelReaderEnd | undefined;
  private writerState: ChannelEndState = 'waiting';
  private readerState: ChannelEndState = 'waiting';
  /** A WebSocket end has attached (the worker's, usually); such a channel is not `release`d. */
  private remoteAttached = false;
  /** The writer ended cleanly (as opposed to vanishing or failing). */
  private writerFinished = false;
  private writerPaused = false;

  private buffer: ChannelItem[] | undefined;
  /** The first `inFlight` items of `buffer` are handed to the reader, awaiting completion. */
  private inFlight = 0;
  private readAhead: ChannelItem[] | undefined;
  private peakBuffered = 0;
  /** Payload bytes of `buffer`, in flight included. */
  private bufferedBytes = 0;
  private peakBufferedBytes = 0;
  private attachListeners: Array<{ side: ChannelEndSide; cb: () => void }> | undefined;
  /** Set when nothing more will be delivered; the channel is then out of the manager's map. */
  private over = false;

  constructor(init: ChannelInit) {
    this.id = init.id;
    this.key = init.key;
    this.bufferSize = init.bufferSize;
    this.maxBufferBytes = init.maxBufferBytes;
    this.createdAtMs = init.createdAtMs;
    this.parentLog = init.logger;
    this.onOver = init.onOver;
  }

  /** Constant-time check of a presented access key. */
  keyMatches(presented: string): boolean {
    return sameSecret(presented, this.key);
  }

  /** The access key, for `ReleasedChannels`. */
  get accessKey(): string {
    return this.key;
  }

  /** Both ends have connected at some point; such a channel no longer expires. */
  get bothConnected(): boolean {
    return this.writerState !== 'waiting' && this.readerState !== 'waiting';
  }

  /** No WebSocket end ever attached: nobody outside the engine knows the channel is in use. */
  get unclaimed(): boolean {
    return !this.remoteAttached;
  }

  /** The channel's logger, made on first use (most channels never log). */
  log(): Logger {
    this.childLog ??= this.parentLog.child({ channel_id: this.id });
    return this.childLog;
  }

  /**
   * Calls `cb` once, when the `side` end attaches (now, if it already has). Returns a cancel.
   * A channel that ends first drops its listeners.
   */
  onAttached(side: ChannelEndSide, cb: () => void): () => void {
    if ((side === 'writer' ? this.writerState : this.readerState) !== 'waiting') {
      cb();
      return () => undefined;
    }
    if (this.over) return () => undefined;
    const listener = { side, cb };
    (this.attachListeners ??= []).push(listener);
    return () => {
      const at = this.attachListeners?.indexOf(listener) ?? -1;
      if (at !== -1) this.attachListeners?.splice(at, 1);
    };
  }

  /** The `side` end can still attach: it never did and the channel is not over. */
  canAttach(side: ChannelEndSide): boolean {
    return !this.over && (side === 'writer' ? this.writerState : this.readerState) === 'waiting';
  }

  /** Makes `end` the writer; the caller checked `canAttach('writer')`. */
  attachWriter(end: ChannelWriterEnd, remote: boolean): void {
    this.writer = end;
    this.writerState = 'open';
    if (remote) this.remoteAttached = true;
    this.log().debug({ remote }, 'writer connected');
    this.fireAttached('writer');
  }

  /** Makes `end` the reader; the caller checked `canAttach('reader')`. */
  attachReader(end: ChannelReaderEnd, remote: boolean): void {
    this.reader = end;
    this.readerState = 'open';
    if (remote) this.remoteAttached = true;
    this.log().debug({ remote }, 'reader connected');
    this.fireAttached('reader');
    this.pump();
    this.endReaderIfDrained();
  }

  /** Ends the channel now: closes whatever end is connected with `why` and drops buffered data. */
  abort(why: ChannelCloseKind): void {
    if (this.over) return;
    if (this.writer && this.writerState === 'open') this.writer.close(why);
    if (this.reader && this.readerState === 'open') this.reader.close(why);
    this.finish(why.reason);
  }

  stats(nowMs: number): ChannelStats {
    const readAhead = this.readAhead ?? NO_ITEMS;
    return {
      channelId: this.id,
      bufferSize: this.bufferSize,
      buffered: this.buffer?.length ?? 0,
      inFlight: this.inFlight,
      readAhead: readAhead.length,
      readAheadBytes: readAhead.reduce((sum, item) => sum + item.data.length, 0),
      peakBuffered: this.peakBuffered,
      bufferedBytes: this.bufferedBytes,
      peakBufferedBytes: this.peakBufferedBytes,
      writer: this.writerState,
      reader: this.readerState,
      writerPaused: this.writerPaused,
      ageMs: nowMs - this.createdAtMs,
    };
  }

  /** From the writer end: one message. */
  writerItem(item: ChannelItem): void {
    // After the channel is over the writer may still be read to finish its close handshake.
    if (this.over) return;
    const buffer = (this.buffer ??= []);
    const readAhead = (this.readAhead ??= []);
    if (readAhead.length === 0 && this.hasRoomFor(buffer, item)) this.accept(buffer, item);
    else readAhead.push(item);
    // A message left waiting in readAhead pauses the writer too: the byte bound, not the count, refused it.
    if (readAhead.length > 0 || this.isFull(buffer)) this.pauseWriter();
    this.pump();
  }

  /** From the writer end: it is gone; `finished` when it ended cleanly (Close frame, no error). */
  writerClosed(finished: boolean): void {
    this.writerState = 'done';
    this.writer = undefined;
    this.writerPaused = false;
    this.writerFinished = finished;
    if (this.over) return;
    this.log().debug({ finished }, 'writer closed');
    this.endReaderIfDrained();
  }

  /** From the reader end: it is gone. */
  readerClosed(): void {
    this.readerState = 'done';
    this.reader = undefined;
    if (this.over) return;
    // The stream did not reach its end: what the writer still sends has nowhere to go.
    this.log().debug('reader went away before the end of the stream');
    if (this.writer && this.writerState === 'open') this.writer.close(ChannelClose.readerGone);
    this.finish('reader gone');
  }

  private fireAttached(side: ChannelEndSide): void {
    const listeners = this.attachListeners;
    if (!listeners) return;
    this.attachListeners = listeners.filter((l) => l.side !== side);
    for (const l of listeners) if (l.side === side) l.cb();
  }

  /** The buffer takes `item` now: a free slot, and its bytes fit (an empty buffer takes any message). */
  private hasRoomFor(buffer: ChannelItem[], item: ChannelItem): boolean {
    if (buffer.length >= this.bufferSize) return false;
    return buffer.length === 0 || this.bufferedBytes + item.data.length <= this.maxBufferBytes;
  }

  /** No more messages until the reader takes some: every slot used, or the byte bound reached. */
  private isFull(buffer: ChannelItem[]): boolean {
    return buffer.length >= this.bufferSize || this.bufferedBytes >= this.maxBufferBytes;
  }

  private accept(buffer: ChannelItem[], item: ChannelItem): void {
    buffer.push(item);
    this.bufferedBytes += item.data.length;
    if (buffer.length > this.peakBuffered) this.peakBuffered = buffer.length;
    if (this.bufferedBytes > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes;
  }

  /** Hands every buffered item not yet in flight to the reader, in order. */
  private pump(): void {
    const { reader, buffer } = this;
    if (this.over || !reader || !buffer || this.readerState !== 'open' || !reader.isOpen) return;
    while (!this.over && this.inFlight < buffer.length) {
      const item = buffer[this.inFlight++];
      reader.send(item, (err) => this.onDelivered(reader, err));
    }
  }

  /** A delivery to the reader completed (callbacks come in send order); frees its slot. */
  private onDelivered(reader: ChannelReaderEnd, err: Error | undefined): void {
    // A failed write means the reader is closing; its close handler ends the channel.
    const { buffer } = this;
    if (err || this.over || reader !== this.reader || !buffer) return;
    const delivered = buffer.shift() as ChannelItem;
    this.bufferedBytes -= delivered.data.length;
    this.inFlight--;
    const readAhead = this.readAhead ?? [];
    while (readAhead.length > 0 && this.hasRoomFor(buffer, readAhead[0])) {
      this.accept(buffer, readAhead.shift() as ChannelItem);
    }
    if (this.writerPaused && readAhead.length === 0 && !this.isFull(buffer)) {
      this.resumeWriter();
    }
    this.pump();
    this.endReaderIfDrained();
  }

  /** Once the writer is done and everything it sent is delivered, closes the reader. */
  private endReaderIfDrained(): void {
    if (this.over || this.writerState !== 'done') return;
    if ((this.buffer?.length ?? 0) > 0 || (this.readAhead?.length ?? 0) > 0) return;
    if (!this.reader || this.readerState !== 'open') return;
    this.reader.close(this.writerFinished ? ChannelClose.complete : ChannelClose.writerGone);
    this.finish('delivered');
  }

  private pauseWriter(): void {
    if (this.writerPaused || !this.writer || this.writerState !== 'open') return;
    this.writerPaused = true;
    this.writer.pause();
  }

  private resumeWriter(): void {
    this.writerPaused = false;
    if (this.writer && this.writerState === 'open') this.writer.resume();
  }

  private finish(why: string): void {
    if (this.over) return;
    this.over = true;
    this.buffer = undefined;
    this.readAhead = undefined;
    this.inFlight = 0;
    this.bufferedBytes = 0;
    this.attachListeners = undefined;
    if (this.childLog) this.childLog.debug({ why }, 'channel over');
    this.onOver(this);
  }
}
