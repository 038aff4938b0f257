/**
 * The limits of the stream client port (port 3112), raw WebSocket and Socket.IO clients alike.
 * Each is an `iii-stream` config key of ours (defaults in src/config/stream-limits.ts):
 * `max_frame_bytes`, `max_subscriptions_per_connection`, `max_send_buffer_bytes`, and
 * `max_connections_per_address` (default 1024, 0 = unlimited), counted over raw WebSocket and
 * Socket.IO clients together (src/transport/address-limit.ts).
 */

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
export function subscriptionLimitRefusal(
  subscriptions: ReadonlyMap<string, unknown>,
  subscriptionId: string,
  limits: StreamClientLimits,
): string | undefined {
  const max = limits.maxSubscriptionsPerConnection;
  if (subscriptions.has(subscriptionId) || subscriptions.size < max) return undefined;
  return `A connection may hold at most ${max} subscriptions (iii-stream.max_subscriptions_per_connection); leave one before joining another.`;
}
