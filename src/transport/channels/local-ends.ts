import type { Channel } from './channel';
import type { ChannelReaderEnd, ChannelWriterEnd } from './channel-end';
import type { ChannelItem } from './channel-item';
import type { ChannelCloseKind } from './close-codes';

/**
 * The engine's own writing end of a channel, in process: no socket, same bounded buffer. `write`
 * returns false once the buffer is full; wait for `onDrain` before writing more (what is written
 * meanwhile is still taken, as a paused socket's read-ahead is, but nothing bounds it then).
 */
export class LocalWriter implements ChannelWriterEnd {
  /** Called (asynchronously) when a full buffer has room again. */
  onDrain: (() => void) | undefined;
  /** Called once if the channel ends this side (reader gone, expired, shutdown). */
  onClose: ((why: ChannelCloseKind) => void) | undefined;
  private paused = false;
  private done = false;

  constructor(private readonly channel: Channel) {}

  /** The channel no longer takes writes: ended, aborted, or closed by the channel. */
  get closed(): boolean {
    return this.done;
  }

  /** Hands one message to the channel; false when the caller should wait for `onDrain`. */
  write(data: Buffer, binary: boolean): boolean {
    if (this.done) return false;
    this.channel.writerItem({ data, binary });
    return !this.paused && !this.done;
  }

  /** A clean end: the reader gets everything written, then Close 1000. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.channel.writerClosed(true);
  }

  /** The writer gives up: the reader gets what was written, then Close 1001 (writer gone). */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.channel.writerClosed(false);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Not from inside the channel's own bookkeeping: the drain handler writes again.
    queueMicrotask(() => {
      if (!this.paused && !this.done) this.onDrain?.();
    });
  }

  close(why: ChannelCloseKind): void {
    if (this.done) return;
    this.done = true;
    this.onClose?.(why);
  }
}

/** What the engine's reading end is told: each message in order, then how the stream ended. */
export interface LocalReaderHandlers {
  message(item: ChannelItem): void;
  /** `ChannelClose.complete` after a clean end; `writerGone`, `expired` or `shutdown` otherwise. */
  end(why: ChannelCloseKind): void;
}

interface Pending {
  item: ChannelItem;
  done: (err?: Error) => void;
}

/**
 * The engine's own reading end of a channel, in process. Messages reach `handlers.message` in a
 * microtask after the channel hands them over; `pause` stops taking them, so the channel's buffer
 * fills and its writer is paused (a slow HTTP client holds up the worker's writes).
 */
export class LocalReader implements ChannelReaderEnd {
  /** Items the channel sent and the consumer has not taken yet; all of them count in the channel's buffer. */
  private readonly pending: Pending[] = [];
  private paused = false;
  private scheduled = false;
  private closing: ChannelCloseKind | undefined;
  private finished = false;

  constructor(
    private readonly channel: Channel,
    private readonly handlers: LocalReaderHandlers,
  ) {}

  get isOpen(): boolean {
    return !this.finished && this.closing === undefined;
  }

  /** Stops delivering messages until `resume`. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.schedule();
  }

  /** The consumer leaves before the end: the channel is dropped and its writer closed (reader gone). */
  cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.pending.length = 0;
    this.channel.readerClosed();
  }

  send(item: ChannelItem, done: (err?: Error) => void): void {
    this.pending.push({ item, done });
    this.schedule();
  }

  close(why: ChannelCloseKind): void {
    if (this.finished || this.closing) return;
    // A drained channel has nothing pending; an aborted one drops what it had.
    this.pending.length = 0;
    this.closing = why;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    while (!this.paused && !this.finished && this.pending.length > 0) {
      const { item, done } = this.pending.shift() as Pending;
      this.handlers.message(item);
      done();
    }
    if (this.finished || !this.closing || this.pending.length > 0) return;
    this.finished = true;
    this.handlers.end(this.closing);
  }
}
