import type { CronLock, LastTick } from './lock';

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
  /** job id -> the latest tick won here (one node: it is always this node's). */
  private readonly last = new Map<string, LastTick>();

  constructor(
    private readonly ttlMs: number = DEFAULT_LOCK_TTL_MS,
    private readonly nodeId: string = '',
  ) {}

  async tryAcquire(jobId: string, scheduledTimeMs: number): Promise<boolean> {
    const now = Date.now();
    const expiresAt = this.held.get(jobId);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.held.set(jobId, now + this.ttlMs);
    this.last.set(jobId, { nodeId: this.nodeId, atMs: scheduledTimeMs });
    return true;
  }

  async lastTick(jobId: string): Promise<LastTick | undefined> {
    return this.last.get(jobId);
  }

  async release(jobId: string, _scheduledTimeMs: number): Promise<void> {
    this.held.delete(jobId);
  }

  async close(): Promise<void> {
    this.held.clear();
    this.last.clear();
  }
}
