import type { CronLock } from './lock';

/** How long a lock is held when its run never releases it (the original's kv default), in ms. */
export const DEFAULT_LOCK_TTL_MS = 30_000;

/**
 * The `kv` adapter: a lock per job id in this process (the original keeps it in its builtin
 * KV store, with no protection across engines either). A lock expires after `ttlMs` so that a
 * run that never released it cannot block the job forever.
 */
export class MemoryCronLock implements CronLock {
  /** job id -> epoch ms at which its lock expires. */
  private readonly held = new Map<string, number>();

  constructor(private readonly ttlMs: number = DEFAULT_LOCK_TTL_MS) {}

  async tryAcquire(jobId: string, _scheduledTimeMs: number): Promise<boolean> {
    const now = Date.now();
    const expiresAt = this.held.get(jobId);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.held.set(jobId, now + this.ttlMs);
    return true;
  }

  async release(jobId: string, _scheduledTimeMs: number): Promise<void> {
    this.held.delete(jobId);
  }

  async close(): Promise<void> {
    this.held.clear();
  }
}
