/**
 * The limits of the stream client port (port 3112), raw WebSocket and Socket.IO clients alike.
 * Each is an `iii-stream` config key of ours (src/config/schema.ts reads its default from here):
 * `max_frame_bytes`, `max_subscriptions_per_connection`, `max_send_buffer_bytes`, and
 * `max_connections_per_address` (default 1024, 0 = unlimited), counted over raw WebSocket and
 * Socket.IO clients together (src/transport/address-limit.ts).
 */

/** Default `max_frame_bytes`: largest frame a client may send, in bytes; a larger one closes the socket with 1009. */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;

/** Default `max_subscriptions_per_connection`: a join beyond it gets a `limit_exceeded` error. */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;

/**
 * Default `max_send_buffer_bytes`: bytes queued for a client that has stopped reading, past which
 * its socket is cut (no close frame: it could not get through the queue either). Bounds the
 * memory one slow client can pin.
 */
export const MAX_CLIENT_SEND_BUFFER_BYTES = 8 * 1024 * 1024;

/** The three per-connection limits as configured (`iii-stream` block). */
export interface StreamClientLimits {
  /** `max_frame_bytes`, in bytes. */
  maxFrameBytes: number;
  /** `max_subscriptions_per_connection`. */
  maxSubscriptionsPerConnection: number;
  /** `max_send_buffer_bytes`, in bytes. */
  maxSendBufferBytes: number;
}

/**
 * Why a connection holding `subscriptions` may not join `subscriptionId` (re-joining one it holds
 * is always allowed), or undefined when it may.
 */
export function subscriptionLimitRefusal(subscriptions: ReadonlyMap<string, unknown>, subscriptionId: string, limits: StreamClientLimits): string | undefined {
  const max = limits.maxSubscriptionsPerConnection;
  if (subscriptions.has(subscriptionId) || subscriptions.size < max) return undefined;
  return `A connection may hold at most ${max} subscriptions (iii-stream.max_subscriptions_per_connection); leave one before joining another.`;
}
