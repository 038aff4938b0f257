import type { ChannelItem } from './channel-item';
import type { ChannelCloseKind } from './close-codes';

/**
 * The channel's view of its writing end: a WebSocket (a worker or any client on the worker port)
 * or an in-process end (the engine's own side, see local-ends.ts). The end feeds the channel with
 * `Channel.writerItem` / `Channel.writerClosed`; the channel steers it with these.
 */
export interface ChannelWriterEnd {
  /** Stop producing: the buffer is full. Items already on their way may still arrive (read-ahead). */
  pause(): void;
  /** A slot is free again. */
  resume(): void;
  /** The channel is over for this end (reader gone, expired, shutdown); it sends nothing more. */
  close(why: ChannelCloseKind): void;
}

/**
 * The channel's view of its reading end. Delivery is asynchronous: `done` is called once the item
 * has left the channel's hands (written to the socket, or taken by the in-process consumer), in
 * send order; an error means the end is going away and will report `Channel.readerClosed`.
 */
export interface ChannelReaderEnd {
  /** The end can take items now. */
  readonly isOpen: boolean;
  send(item: ChannelItem, done: (err?: Error) => void): void;
  /** No more items: `complete` after a clean end, another kind when the stream was cut. */
  close(why: ChannelCloseKind): void;
}

/** Which end of a channel attached, for `ChannelManager.onAttached`. */
export type ChannelEndSide = 'writer' | 'reader';
