import { EngineError } from '../../../protocol/errors';
import { backoffDelayMs } from '../backoff';
import { QueueErrorCode } from '../errors';
import type { DeadLetter, Deliver, QueueAdapter, QueueCounts, QueueJob, QueueSpec } from './adapter';
import { FifoLine, StandardLine, type JobLine, type StoredJob } from './job-lines';
import { InFlight } from './in-flight';
import type { QueueJournal } from './journal';

function lineFor(ordering: QueueSpec['ordering']): JobLine {
  return ordering === 'fifo' ? new FifoLine() : new StandardLine();
}

class MemoryQueue {
  line: JobLine;
  active = 0;
  deliver: Deliver | undefined;
  readonly deadLetters: DeadLetter[] = [];
  timer: NodeJS.Timeout | undefined;
  timerDueMs = 0;
  /** Message data kept, held and dead-lettered, in bytes. */
  bytes = 0;

  constructor(public spec: QueueSpec) {
    this.line = lineFor(spec.ordering);
  }

  get held(): number {
    return this.line.size + this.active;
  }
}

/**
 * The `builtin` adapter: one process. With `store_method: in_memory` nothing survives a
 * restart; with `file_based` a journal in the embedded store keeps every message (an enqueue is
 * acknowledged once it is written), its attempts and backoff, and the dead letters, and a
 * queue declared again after a restart takes them back (messages that were in flight are
 * delivered again: at least once). Delivery is event driven (a new message, a settled delivery
 * or a due backoff starts the next one), so `poll_interval_ms` costs nothing here.
 */
export class MemoryQueueAdapter implements QueueAdapter {
  readonly name = 'builtin';
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly inFlight = new InFlight();
  private closed = false;

  /** `onDeadLetterDropped` hears of dead letters pushed out by `maxDeadLetters`. */
  constructor(
    private readonly onDeadLetterDropped: (queue: string, dropped: DeadLetter) => void = () => undefined,
    private readonly journal?: QueueJournal,
  ) {}

  async declare(spec: QueueSpec): Promise<void> {
    const queue = this.queues.get(spec.name);
    if (!queue) {
      this.queues.set(spec.name, this.restored(new MemoryQueue(spec)));
      return;
    }
    // The order policy changes only while nothing is held: the lines keep different state.
    const ordering = queue.held === 0 ? spec.ordering : queue.spec.ordering;
    if (ordering !== queue.spec.ordering) queue.line = lineFor(ordering);
    queue.spec = { ...spec, ordering };
    this.pump(queue);
  }

  async enqueue(name: string, job: QueueJob): Promise<number> {
    const queue = this.queue(name);
    const { maxDepth, maxBytes, label } = queue.spec;
    const fits = () => queue.held < maxDepth && queue.bytes + job.sizeBytes <= maxBytes;
    let dropped = 0;
    while (queue.spec.overflow === 'drop_oldest' && !fits()) {
      const old = queue.line.dropOldest();
      if (!old) break;
      queue.bytes -= old.job.sizeBytes;
      this.journal?.forget(name, old.job.id);
      dropped++;
    }
    if (queue.held >= maxDepth) {
      throw new EngineError(
        QueueErrorCode.queueFull,
        `Queue '${label}' is full: it holds ${maxDepth} messages (max_depth); retry later or consume faster`,
      );
    }
    if (queue.bytes + job.sizeBytes > maxBytes) {
      throw new EngineError(
        QueueErrorCode.queueFull,
        `Queue '${label}' is full: it keeps ${queue.bytes} of its ${maxBytes} bytes (max_queue_bytes, dead letters included); this message has ${job.sizeBytes}`,
      );
    }
    const stored: StoredJob = { job, attemptsMade: 0, readyAtMs: 0 };
    queue.bytes += job.sizeBytes;
    queue.line.push(stored);
    const written = this.journal?.hold(name, stored);
    this.pump(queue);
    await written;
    return dropped;
  }

  async startConsumer(name: string, deliver: Deliver): Promise<void> {
    const queue = this.queue(name);
    queue.deliver = deliver;
    this.pump(queue);
  }

  async stopConsumer(name: string): Promise<void> {
    const queue = this.queues.get(name);
    if (!queue) return;
    queue.deliver = undefined;
    clearTimeout(queue.timer);
    queue.timer = undefined;
  }

  async takeAll(name: string): Promise<QueueJob[]> {
    const queue = this.queues.get(name);
    if (!queue) return [];
    const jobs = queue.line.takeAll().map((stored) => stored.job);
    for (const job of jobs) {
      queue.bytes -= job.sizeBytes;
      this.journal?.forget(name, job.id);
    }
    return jobs;
  }

  async counts(name: string): Promise<QueueCounts> {
    const queue = this.queues.get(name);
    if (!queue) return { waiting: 0, delayed: 0, active: 0, deadLetters: 0 };
    const delayed = queue.line.delayed();
    return { waiting: queue.line.size - delayed, delayed, active: queue.active, deadLetters: queue.deadLetters.length };
  }

  async deadLetters(name: string, offset: number, limit: number): Promise<DeadLetter[]> {
    return (this.queues.get(name)?.deadLetters ?? []).slice(offset, offset + limit);
  }

  async redriveAll(name: string): Promise<number> {
    const queue = this.queues.get(name);
    if (!queue) return 0;
    const letters = queue.deadLetters.splice(0);
    for (const letter of letters) this.requeue(queue, letter.job);
    this.pump(queue);
    return letters.length;
  }

  async redrive(name: string, jobId: string): Promise<boolean> {
    const queue = this.queues.get(name);
    const letter = queue && this.removeDeadLetter(queue, jobId);
    if (!queue || !letter) return false;
    this.requeue(queue, letter.job);
    this.pump(queue);
    return true;
  }

  async discard(name: string, jobId: string): Promise<boolean> {
    const queue = this.queues.get(name);
    const letter = queue && this.removeDeadLetter(queue, jobId);
    if (!queue || !letter) return false;
    queue.bytes -= letter.job.sizeBytes;
    this.journal?.forget(name, jobId);
    return true;
  }

  async close(graceMs: number): Promise<void> {
    this.closed = true;
    for (const queue of this.queues.values()) {
      queue.deliver = undefined;
      clearTimeout(queue.timer);
    }
    await this.inFlight.settled(graceMs);
    await this.journal?.close();
  }

  /** A new queue with what the journal kept of it (nothing in memory). */
  private restored(queue: MemoryQueue): MemoryQueue {
    if (!this.journal) return queue;
    const { held, dead } = this.journal.take(queue.spec.name);
    const now = Date.now();
    for (const stored of held) {
      queue.bytes += stored.job.sizeBytes;
      queue.line.restore(stored, now);
    }
    for (const letter of dead) {
      queue.bytes += letter.job.sizeBytes;
      queue.deadLetters.push(letter);
    }
    return queue;
  }

  /** A dead letter back in line with its attempts reset. */
  private requeue(queue: MemoryQueue, job: QueueJob): void {
    const stored: StoredJob = { job, attemptsMade: 0, readyAtMs: 0 };
    queue.line.push(stored);
    this.journal?.hold(queue.spec.name, stored).catch(() => undefined);
  }

  private queue(name: string): MemoryQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`queue ${name} was not declared`);
    return queue;
  }

  private removeDeadLetter(queue: MemoryQueue, jobId: string): DeadLetter | undefined {
    const index = queue.deadLetters.findIndex((letter) => letter.job.id === jobId);
    return index < 0 ? undefined : queue.deadLetters.splice(index, 1)[0];
  }

  /** Starts deliveries up to the queue's concurrency, then arms the timer of the next backoff. */
  private pump(queue: MemoryQueue): void {
    if (!queue.deliver || this.closed) return;
    const now = Date.now();
    while (queue.active < queue.spec.concurrency) {
      const stored = queue.line.next(now);
      if (!stored) break;
      this.run(queue, queue.deliver, stored);
    }
    this.arm(queue, now);
  }

  private arm(queue: MemoryQueue, now: number): void {
    const due = queue.line.nextDueMs();
    if (due === undefined || (queue.timer && queue.timerDueMs <= due)) return;
    clearTimeout(queue.timer);
    queue.timerDueMs = due;
    queue.timer = setTimeout(
      () => {
        queue.timer = undefined;
        this.pump(queue);
      },
      Math.max(0, due - now),
    );
    queue.timer.unref();
  }

  private run(queue: MemoryQueue, deliver: Deliver, stored: StoredJob): void {
    queue.active++;
    this.inFlight.add(1);
    const attempt = stored.attemptsMade + 1;
    let outcome: Promise<void>;
    try {
      outcome = deliver(stored.job, attempt);
    } catch (err) {
      outcome = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    outcome.then(
      () => this.settle(queue, stored, undefined),
      (err: unknown) => this.settle(queue, stored, err instanceof Error ? err.message : String(err)),
    );
  }

  private settle(queue: MemoryQueue, stored: StoredJob, error: string | undefined): void {
    queue.active--;
    this.inFlight.add(-1);
    if (error === undefined) {
      queue.line.settled(stored);
      queue.bytes -= stored.job.sizeBytes;
      this.journal?.forget(queue.spec.name, stored.job.id);
    } else {
      stored.attemptsMade++;
      if (stored.attemptsMade >= queue.spec.maxAttempts) {
        queue.line.settled(stored);
        this.deadLetter(queue, { job: stored.job, error, failedAtMs: Date.now(), attemptsMade: stored.attemptsMade });
      } else {
        stored.readyAtMs = Date.now() + backoffDelayMs(queue.spec.backoffMs, stored.attemptsMade);
        queue.line.retry(stored);
        this.journal?.hold(queue.spec.name, stored).catch(() => undefined);
      }
    }
    this.pump(queue);
  }

  private deadLetter(queue: MemoryQueue, letter: DeadLetter): void {
    queue.deadLetters.push(letter);
    this.journal?.dead(queue.spec.name, letter);
    while (queue.deadLetters.length > queue.spec.maxDeadLetters) {
      const dropped = queue.deadLetters.shift()!;
      queue.bytes -= dropped.job.sizeBytes;
      this.journal?.forget(queue.spec.name, dropped.job.id);
      this.onDeadLetterDropped(queue.spec.label, dropped);
    }
  }
}
