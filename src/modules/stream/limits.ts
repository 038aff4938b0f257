/**
 * The fixed limits of the stream client port (port 3112): constants, not config keys, so the
 * `iii-stream` block stays the original's. The one configurable limit is ours:
 * `max_connections_per_address` (default 1024, 0 = unlimited), counted over raw WebSocket and
 * Socket.IO clients together (src/transport/address-limit.ts).
 */

/** Largest frame a client may send, in bytes; a larger one closes the socket with 1009. */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;

/** Subscriptions one client connection may hold; a join beyond it gets a `limit_exceeded` error frame. */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 1000;

/**
 * Bytes queued for a client that has stopped reading, past which its socket is cut (no close
 * frame: it could not get through the queue either). Bounds the memory one slow client can pin.
 */
export const MAX_CLIENT_SEND_BUFFER_BYTES = 8 * 1024 * 1024;
