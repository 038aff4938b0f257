import { accessKeyMatches } from './access-key';

/**
 * Ids and keys of channels released unused (`ChannelManager.release`), kept for a grace period so
 * that a worker whose connection was already on its way when the HTTP exchange ended gets a clean
 * Close instead of HTTP 404 (the SDK turns a refused upgrade into an unhandled stream error).
 *
 * Two generations rotated every `graceMs`: an entry lives between graceMs and 2 x graceMs, and a
 * rotation frees a whole generation at once, with no timer and no per-entry bookkeeping.
 */
export class ReleasedChannels {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();
  private rotatedAtMs: number;

  constructor(
    /** How long a released channel is still recognised, in milliseconds (at least; at most twice). */
    private readonly graceMs: number,
    nowMs: number,
  ) {
    this.rotatedAtMs = nowMs;
  }

  add(channelId: string, key: string, nowMs: number): void {
    this.rotate(nowMs);
    this.current.set(channelId, key);
  }

  /** The channel was released within the grace period and `presented` is its key. */
  matches(channelId: string, presented: string, nowMs: number): boolean {
    this.rotate(nowMs);
    const key = this.current.get(channelId) ?? this.previous.get(channelId);
    return key !== undefined && accessKeyMatches(key, presented);
  }

  /** Recognised without a key check (the caller already checked it). */
  has(channelId: string): boolean {
    return this.current.has(channelId) || this.previous.has(channelId);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }

  private rotate(nowMs: number): void {
    if (nowMs - this.rotatedAtMs < this.graceMs) return;
    // Idle for two periods or more: both generations are stale.
    this.previous = nowMs - this.rotatedAtMs >= 2 * this.graceMs ? new Map() : this.current;
    this.current = new Map();
    this.rotatedAtMs = nowMs;
  }
}
