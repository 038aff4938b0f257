/** Defaults of the stream client port's per-connection limits (`iii-stream` keys; see src/modules/stream/limits.ts). */

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
