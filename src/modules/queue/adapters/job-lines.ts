import { Deque } from '../deque';
import { DueHeap } from '../due-heap';
import type { QueueJob } from './adapter';

/** A message held by the memory adapter, with its delivery state. */
export interface StoredJob {
  job: QueueJob;
  attemptsMade: number;
  /** Not deliverable before this time (ms since epoch); 0 when never failed. */
  readyAtMs: number;
}

/**
 * The order policy of one in-memory queue: where messages wait between deliveries and which
 * one goes next. A job taken with `next` comes back through `retry` (failed, will be retried)
 * or `settled` (acknowledged or dead-lettered).
 */
export interface JobLine {
  readonly size: number;
  /** Messages waiting for a backoff to pass (FIFO: also those queued behind one). */
  delayed(): number;
  push(stored: StoredJob): void;
  /** Puts back a message kept by an earlier run, in the order kept; one still backing off waits for `readyAtMs`. */
  restore(stored: StoredJob, nowMs: number): void;
  next(nowMs: number): StoredJob | undefined;
  retry(stored: StoredJob): void;
  settled(stored: StoredJob): void;
  /** When the earliest delayed message becomes deliverable, or undefined. */
  nextDueMs(): number | undefined;
  /** Removes the oldest waiting message (to make room), if any. */
  dropOldest(): StoredJob | undefined;
  /** Removes every message, oldest first. */
  takeAll(): StoredJob[];
}

/** Standard queues: any message may overtake another; retries wait in a delayed set. */
export class StandardLine implements JobLine {
  private readonly waiting = new Deque<StoredJob>();
  private readonly backoff = new DueHeap<StoredJob>();

  get size(): number {
    return this.waiting.length + this.backoff.length;
  }

  delayed(): number {
    return this.backoff.length;
  }

  push(stored: StoredJob): void {
    this.waiting.push(stored);
  }

  restore(stored: StoredJob, nowMs: number): void {
    if (stored.readyAtMs > nowMs) this.backoff.push(stored);
    else this.waiting.push(stored);
  }

  next(nowMs: number): StoredJob | undefined {
    for (const due of this.backoff.popDue(nowMs)) this.waiting.push(due);
    return this.waiting.shift();
  }

  retry(stored: StoredJob): void {
    this.backoff.push(stored);
  }

  settled(): void {}

  nextDueMs(): number | undefined {
    return this.backoff.peek()?.readyAtMs;
  }

  dropOldest(): StoredJob | undefined {
    return this.waiting.shift() ?? this.backoff.pop();
  }

  takeAll(): StoredJob[] {
    const all = [...this.waiting, ...this.backoff.drain()].sort((a, b) => a.job.enqueuedAtMs - b.job.enqueuedAtMs);
    this.waiting.clear();
    return all;
  }
}

/**
 * FIFO queues: one lane per message group. A group delivers one message at a time; a failed
 * message goes back to the head of its group and blocks only that group until its backoff has
 * passed, so order holds per group even under retry while other groups keep flowing.
 */
export class FifoLine implements JobLine {
  private readonly groups = new Map<string, Deque<StoredJob>>();
  /** Groups whose head may be delivered now (not in flight, not backing off). */
  private readonly runnable = new Deque<string>();
  /** Groups with a message in flight or backing off. */
  private readonly blocked = new Set<string>();
  /** Groups whose head is backing off, by due time. */
  private readonly backoff = new DueHeap<{ group: string; readyAtMs: number }>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  delayed(): number {
    let n = 0;
    for (const { group } of this.backoff) n += this.groups.get(group)?.length ?? 0;
    return n;
  }

  push(stored: StoredJob): void {
    const group = stored.job.group ?? '';
    let lane = this.groups.get(group);
    if (!lane) {
      lane = new Deque();
      this.groups.set(group, lane);
    }
    lane.push(stored);
    this.count++;
    if (lane.length === 1 && !this.blocked.has(group)) this.runnable.push(group);
  }

  restore(stored: StoredJob, nowMs: number): void {
    this.push(stored);
    const group = stored.job.group ?? '';
    // A group's head that was backing off blocks its group until then (its runnable entry goes stale).
    if (stored.readyAtMs > nowMs && this.groups.get(group)!.length === 1) {
      this.blocked.add(group);
      this.backoff.push({ group, readyAtMs: stored.readyAtMs });
    }
  }

  next(nowMs: number): StoredJob | undefined {
    for (const { group } of this.backoff.popDue(nowMs)) {
      this.blocked.delete(group);
      this.runnable.push(group);
    }
    for (;;) {
      const group = this.runnable.shift();
      if (group === undefined) return undefined;
      // Stale entries (a group emptied by dropOldest/takeAll, then refilled) must not let a
      // second message of a group run while one is in flight.
      if (this.blocked.has(group)) continue;
      const stored = this.groups.get(group)?.shift();
      if (!stored) continue;
      this.count--;
      this.blocked.add(group);
      return stored;
    }
  }

  retry(stored: StoredJob): void {
    const group = stored.job.group ?? '';
    let lane = this.groups.get(group);
    if (!lane) {
      lane = new Deque();
      this.groups.set(group, lane);
    }
    lane.unshift(stored);
    this.count++;
    this.backoff.push({ group, readyAtMs: stored.readyAtMs });
  }

  settled(stored: StoredJob): void {
    const group = stored.job.group ?? '';
    this.blocked.delete(group);
    const lane = this.groups.get(group);
    if (lane && lane.length > 0) this.runnable.push(group);
    else this.groups.delete(group);
  }

  nextDueMs(): number | undefined {
    return this.backoff.peek()?.readyAtMs;
  }

  dropOldest(): StoredJob | undefined {
    let oldest: { group: string; stored: StoredJob } | undefined;
    for (const [group, lane] of this.groups) {
      const head = lane.peek();
      if (head && (!oldest || head.job.enqueuedAtMs < oldest.stored.job.enqueuedAtMs)) oldest = { group, stored: head };
    }
    if (!oldest) return undefined;
    const lane = this.groups.get(oldest.group)!;
    lane.shift();
    if (lane.length === 0 && !this.blocked.has(oldest.group)) this.groups.delete(oldest.group);
    this.count--;
    return oldest.stored;
  }

  takeAll(): StoredJob[] {
    const all = [...this.groups.values()]
      .flatMap((lane) => [...lane])
      .sort((a, b) => a.job.enqueuedAtMs - b.job.enqueuedAtMs);
    this.groups.clear();
    this.count = 0;
    return all;
  }
}
