/**
 * WebSocket close codes and reasons the broker sends on channel sockets. The SDK ends its stream
 * on any Close, so codes only help people and engine-aware clients tell the endings apart.
 */
export const ChannelClose = {
  /** Writer finished and every buffered item was delivered. */
  complete: { code: 1000, reason: '' },
  /** Writer vanished (no Close frame) or failed; what it had sent was delivered first. */
  writerGone: { code: 1001, reason: 'writer disconnected' },
  /** Reader went away before the stream ended; the writer's remaining data has nowhere to go. */
  readerGone: { code: 1001, reason: 'reader disconnected' },
  /** Writer and reader did not both connect within the channel's ttl. */
  expired: { code: 1001, reason: 'channel expired' },
  /** Its creator released the channel before any WebSocket end attached; a late end gets this at once. */
  released: { code: 1001, reason: 'channel released' },
  /** The manager is closing. */
  shutdown: { code: 1001, reason: 'engine shutting down' },
  /** The end this socket asked for is already taken (or the channel is over). */
  endTaken: { code: 1008, reason: 'channel end already connected' },
} as const;

export type ChannelCloseKind = (typeof ChannelClose)[keyof typeof ChannelClose];
