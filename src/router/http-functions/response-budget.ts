/**
 * Bytes of HTTP-function response bodies the engine holds at once, over all calls in flight.
 * maxResponseBytes bounds one response; without this, many slow responses just under it (one
 * worker may have 10 000 calls pending) could still hold gigabytes.
 */
export const DEFAULT_MAX_BUFFERED_RESPONSE_BYTES = 256 * 1024 * 1024;

/** A shared byte budget: reserved chunk by chunk while a body is read, released when it is done. */
export class ResponseBudget {
  private used = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes reserved right now. */
  get usedBytes(): number {
    return this.used;
  }

  /** Reserves `bytes`; false (nothing reserved) when that would pass maxBytes. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.maxBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
