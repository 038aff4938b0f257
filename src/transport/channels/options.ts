import { silentLogger, type Logger } from '../../observability/logger';

/** How the channel broker behaves; every number carries its unit in its name. */
export interface ChannelOptions {
  /**
   * A channel whose writer and reader have not both connected within this many milliseconds of
   * its creation is removed (connected ends are closed with 1001). Default 300000 (5 min).
   */
  ttlMs: number;
  /** Messages buffered between writer and reader when `create` gets no size. Default 64. */
  defaultBufferMessages: number;
  /** Upper bound for a requested buffer size, in messages; requests are clamped to 1..this. Default 1024. */
  maxBufferMessages: number;
  /** Largest message accepted from a channel socket, in bytes (ws `maxPayload`). Default 16 MiB. */
  maxMessageBytes: number;
  /**
   * Payload bytes one channel's buffer holds before its writer is paused (as a full buffer of
   * messages pauses it): with 1024 messages of up to 16 MiB each, the message count alone would
   * let one channel hold 16 GiB. A single message larger than this still passes, alone.
   * Default 16 MiB (`engine.channels.max_buffer_bytes`).
   */
  maxBufferBytes: number;
  /**
   * Channels open on this node at once (created and not yet over); `create` beyond it fails
   * with `limit_exceeded`. Default 100000 (`engine.channels.max_open`).
   */
  maxOpen: number;
  /** Told of each `create` refused by `maxOpen` (the `iii_limit_refusals_total` counter). */
  onLimitRefused: (limitKey: string) => void;
  /**
   * A channel released unused (`ChannelManager.release`) is still recognised this many
   * milliseconds (up to twice as long) so that a worker end already on its way gets a Close
   * rather than HTTP 404. Default 2000.
   */
  releasedGraceMs: number;
  /**
   * Starts every channel id this broker makes. In cluster mode it names the node (see
   * cluster/channel-relay.ts), so another node can send a worker's end of the channel here.
   * Default '' (one node).
   */
  idPrefix: string;
  /** How often expired channels are looked for, in milliseconds. Default min(ttlMs, 60000). */
  sweepIntervalMs?: number;
  /** Default: a logger that writes nothing. */
  logger: Logger;
}

export type ResolvedChannelOptions = Required<ChannelOptions>;

export const DEFAULT_CHANNEL_OPTIONS: Readonly<Omit<ChannelOptions, 'sweepIntervalMs'>> = {
  ttlMs: 300_000,
  defaultBufferMessages: 64,
  maxBufferMessages: 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  maxBufferBytes: 16 * 1024 * 1024,
  maxOpen: 100_000,
  onLimitRefused: () => undefined,
  releasedGraceMs: 2_000,
  idPrefix: '',
  logger: silentLogger,
};

const MAX_SWEEP_INTERVAL_MS = 60_000;

/** Fills in defaults and refuses numbers that would make the broker misbehave. */
export function resolveChannelOptions(opts: Partial<ChannelOptions>): ResolvedChannelOptions {
  const ttlMs = opts.ttlMs ?? DEFAULT_CHANNEL_OPTIONS.ttlMs;
  const maxBufferMessages = opts.maxBufferMessages ?? DEFAULT_CHANNEL_OPTIONS.maxBufferMessages;
  const defaultBufferMessages = opts.defaultBufferMessages ?? DEFAULT_CHANNEL_OPTIONS.defaultBufferMessages;
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_CHANNEL_OPTIONS.maxMessageBytes;
  const maxBufferBytes = opts.maxBufferBytes ?? DEFAULT_CHANNEL_OPTIONS.maxBufferBytes;
  const maxOpen = opts.maxOpen ?? DEFAULT_CHANNEL_OPTIONS.maxOpen;
  const releasedGraceMs = opts.releasedGraceMs ?? DEFAULT_CHANNEL_OPTIONS.releasedGraceMs;
  const sweepIntervalMs = opts.sweepIntervalMs ?? Math.min(ttlMs, MAX_SWEEP_INTERVAL_MS);

  requirePositiveInteger('ttlMs', ttlMs);
  requirePositiveInteger('maxBufferMessages', maxBufferMessages);
  requirePositiveInteger('defaultBufferMessages', defaultBufferMessages);
  requirePositiveInteger('maxMessageBytes', maxMessageBytes);
  requirePositiveInteger('maxBufferBytes', maxBufferBytes);
  requirePositiveInteger('maxOpen', maxOpen);
  requirePositiveInteger('sweepIntervalMs', sweepIntervalMs);
  requirePositiveInteger('releasedGraceMs', releasedGraceMs);
  if (defaultBufferMessages > maxBufferMessages) {
    throw new RangeError(
      `channels: defaultBufferMessages (${defaultBufferMessages}) must not exceed maxBufferMessages (${maxBufferMessages})`,
    );
  }
  return {
    ttlMs,
    defaultBufferMessages,
    maxBufferMessages,
    maxMessageBytes,
    maxBufferBytes,
    maxOpen,
    onLimitRefused: opts.onLimitRefused ?? DEFAULT_CHANNEL_OPTIONS.onLimitRefused,
    releasedGraceMs,
    sweepIntervalMs,
    idPrefix: opts.idPrefix ?? DEFAULT_CHANNEL_OPTIONS.idPrefix,
    logger: opts.logger ?? DEFAULT_CHANNEL_OPTIONS.logger,
  };
}

/** `buffer_size` as requested by `engine::channels::create`, clamped to 1..max; default when absent. */
export function clampBufferSize(requested: number | undefined, defaultSize: number, maxSize: number): number {
  if (requested === undefined || !Number.isFinite(requested)) return defaultSize;
  return Math.min(maxSize, Math.max(1, Math.floor(requested)));
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`channels: ${name} must be a positive integer, got ${String(value)}`);
  }
}
