/**
 * Guards one run of a cron job, so that when several nodes schedule the same job only one runs
 * each tick. The memory lock guards one node; the Redis lock (cluster issue) will use Redlock
 * plus a dedup key per (job, scheduled time), which is why the scheduled time travels along.
 */
export interface CronLock {
  /** True when this node may run `jobId`'s tick scheduled at `scheduledTimeMs` (epoch ms). */
  tryAcquire(jobId: string, scheduledTimeMs: number): Promise<boolean>;
  /** Gives up the lock taken for that tick; releasing a lock not held is a no-op. */
  release(jobId: string, scheduledTimeMs: number): Promise<void>;
  /**
   * The latest tick claimed for `jobId` and the node that claimed it: in Redis for the redis lock,
   * so every node gives the same answer; this node's own for the memory lock. Undefined: none yet.
   */
  lastTick(jobId: string): Promise<LastTick | undefined>;
  /** Releases everything this lock holds. */
  close(): Promise<void>;
}

/** Who fired a job's latest tick, and its scheduled time (epoch ms). */
export interface LastTick {
  readonly nodeId: string;
  readonly atMs: number;
}
