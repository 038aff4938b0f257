import type { Logger } from '../../observability/logger';
import type { TriggerEntry } from '../../registry/types';
import type { CronLock } from './adapters/lock';
import type { CronExpression } from './expression';
import { LAST_YEAR } from './field';

/**
 * setTimeout's largest delay (2^31 - 1 ms, about 24.8 days); a longer wait is taken in steps,
 * since Node fires a longer timer at once.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A `cron` binding, checked and parsed. */
export interface CronJob {
  readonly trigger: TriggerEntry;
  /**
   * What the lock guards: the binding's group (`bindingGroupKey`), so that a tick of the bindings
   * of one group fires once on one node, whichever member each node holds at that moment.
   */
  readonly lockId: string;
  readonly expression: CronExpression;
  readonly conditionFunctionId?: string;
}

/** Runs one tick of a job; rejecting means the run failed (logged, never retried). */
export type RunTick = (job: CronJob, scheduledTime: Date) => Promise<void>;

/**
 * Keeps one timer per job. A job's next occurrence is computed only after its previous run has
 * returned, from the later of "now" and the previous occurrence: runs of one job never overlap,
 * and ticks missed while a run was in progress are skipped, not made up. Timers are unref'd so
 * a schedule never keeps the process alive.
 */
export class CronScheduler {
  private readonly jobs = new Map<string, ScheduledJob>();

  constructor(
    private readonly lock: CronLock,
    private readonly runTick: RunTick,
    private readonly logger: Logger,
  ) {}

  add(job: CronJob): void {
    const id = job.trigger.id;
    if (this.jobs.has(id)) throw new Error(`Cron job '${id}' is already registered`);
    const scheduled = new ScheduledJob(job, this.lock, this.runTick, this.logger);
    this.jobs.set(id, scheduled);
    scheduled.arm();
  }

  /** Stops the job's timer; a run in progress finishes, and no further run starts. */
  remove(jobId: string): void {
    this.jobs.get(jobId)?.cancel();
    this.jobs.delete(jobId);
  }

  /** The jobs this node schedules, with their next occurrence and the last tick this node fired. */
  list(): Array<{ job: CronJob; nextAt: Date | undefined; lastFiredAt: Date | undefined }> {
    return [...this.jobs.values()].map((s) => ({ job: s.job, nextAt: s.nextAt, lastFiredAt: s.lastFiredAt }));
  }

  /** Cancels every job and waits for runs in progress to settle. */
  async stop(): Promise<void> {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) job.cancel();
    await Promise.all(jobs.map((job) => job.settled()));
  }
}

class ScheduledJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private cancelled = false;
  /** The previous occurrence (or the creation time): the next one is strictly after it. */
  private last = new Date();
  /** The occurrence the timer waits for (undefined: none left, or a run in progress). */
  nextAt: Date | undefined;
  /** The last tick this node won the lock for and ran. */
  lastFiredAt: Date | undefined;

  constructor(
    readonly job: CronJob,
    private readonly lock: CronLock,
    private readonly runTick: RunTick,
    private readonly logger: Logger,
  ) {}

  arm(): void {
    if (this.cancelled) return;
    const now = new Date();
    const next = this.job.expression.nextAfter(now > this.last ? now : this.last);
    this.nextAt = next;
    if (next === undefined) {
      this.logger.info(
        { job: this.job.trigger.id, expression: this.job.expression.source },
        `cron job has no further occurrence up to ${LAST_YEAR}; it will not run again`,
      );
      return;
    }
    this.waitUntil(next);
  }

  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Sleeps until `at`, in steps of at most MAX_TIMER_DELAY_MS (a timer may also fire early). */
  private waitUntil(at: Date): void {
    const delayMs = at.getTime() - Date.now();
    if (delayMs <= 0) {
      this.timer = undefined;
      this.running = this.tick(at).finally(() => {
        this.running = undefined;
        this.last = at;
        this.arm();
      });
      return;
    }
    this.timer = setTimeout(() => this.waitUntil(at), Math.min(delayMs, MAX_TIMER_DELAY_MS));
    this.timer.unref();
  }

  private async tick(scheduledTime: Date): Promise<void> {
    const id = this.job.trigger.id;
    const lockId = this.job.lockId;
    const at = scheduledTime.getTime();
    try {
      if (!(await this.lock.tryAcquire(lockId, at))) return;
    } catch (err) {
      this.logger.warn({ err, job: id }, 'cron lock unavailable; tick skipped');
      return;
    }
    this.lastFiredAt = scheduledTime;
    try {
      await this.runTick(this.job, scheduledTime);
    } catch (err) {
      this.logger.warn({ err, job: id, functionId: this.job.trigger.function_id }, 'cron run failed (not retried)');
    } finally {
      await this.lock
        .release(lockId, at)
        .catch((err: unknown) => this.logger.warn({ err, job: id }, 'cron lock release failed'));
    }
  }
}
