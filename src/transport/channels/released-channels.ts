import { sameSecret } from '../secret';

/**
 * One generation of released channels. Every HTTP request releases two channels, and a late end
 * asking for one of them is rare, so `add` only appends to two arrays; the id -> key index is
 * built on the first lookup and kept up to date from then on (at most one build per generation).
 */
class Generation {
  private readonly ids: string[] = [];
  private readonly keys: string[] = [];
  private index: Map<string, string> | undefined;

  get size(): number {
    return this.ids.length;
  }

  add(channelId: string, key: string): void {
    this.ids.push(channelId);
    this.keys.push(key);
    this.index?.set(channelId, key);
  }

  key(channelId: string): string | undefined {
    if (this.ids.length === 0) return undefined;
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < this.ids.length; i++) this.index.set(this.ids[i], this.keys[i]);
    }
    return this.index.get(channelId);
  }
}

/**
 * Ids and keys of channels released unused (`ChannelManager.release`), kept for a grace period so
 * that a worker whose connection was already on its way when the HTTP exchange ended gets a clean
 * Close instead of HTTP 404 (the SDK turns a refused upgrade into an unhandled stream error).
 *
 * Two generations rotated every `graceMs`: an entry lives between graceMs and 2 x graceMs, and a
 * rotation frees a whole generation at once, with no timer and no per-entry bookkeeping.
 */
export class ReleasedChannels {
  private current = new Generation();
  private previous = new Generation();
  private rotatedAtMs: number;

  constructor(
    /** How long a released channel is still recognised, in milliseconds (at least; at most twice). */
    private readonly graceMs: number,
    nowMs: number,
  ) {
    this.rotatedAtMs = nowMs;
  }

  /** A channel is released once (it leaves the live channels then), so ids do not repeat. */
  add(channelId: string, key: string, nowMs: number): void {
    this.rotate(nowMs);
    this.current.add(channelId, key);
  }

  /** The channel was released within the grace period and `presented` is its key. */
  matches(channelId: string, presented: string, nowMs: number): boolean {
    this.rotate(nowMs);
    const key = this.current.key(channelId) ?? this.previous.key(channelId);
    return key !== undefined && sameSecret(presented, key);
  }

  /** Recognised without a key check (the caller already checked it). */
  has(channelId: string): boolean {
    return this.current.key(channelId) !== undefined || this.previous.key(channelId) !== undefined;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  clear(): void {
    this.current = new Generation();
    this.previous = new Generation();
  }

  private rotate(nowMs: number): void {
    if (nowMs - this.rotatedAtMs < this.graceMs) return;
    // Idle for two periods or more: both generations are stale.
    this.previous = nowMs - this.rotatedAtMs >= 2 * this.graceMs ? new Generation() : this.current;
    this.current = new Generation();
    this.rotatedAtMs = nowMs;
  }
}
