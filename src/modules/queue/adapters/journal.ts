import type { Logger } from '../../../observability/logger';
import { EmbeddedStore } from '../../../store/embedded-store';
import { OrderedTable, type OrderedRow } from '../../../store/ordered-table';
import type { DeadLetter } from './adapter';
import type { StoredJob } from './job-lines';

/** What the builtin adapter keeps of one queue across restarts. */
export interface KeptQueue {
  /** Messages waiting, backing off or in flight when the engine stopped, in enqueue order. */
  held: StoredJob[];
  /** Dead letters, oldest first. */
  dead: DeadLetter[];
}

/**
 * Where the builtin adapter writes down its messages (`store_method: file_based`). `hold` is
 * awaited before an enqueue is acknowledged; the others follow the deliveries without holding
 * them up, in order, and a failure is logged (the message is then delivered again after a
 * restart: at least once, never lost).
 */
export interface QueueJournal {
  /** What an earlier run kept of `queue`; handed out once, when the queue is first declared. */
  take(queue: string): KeptQueue;
  /** A message to deliver: new, failed and retried, or redriven. Rejects (logged) when it could not be written. */
  hold(queue: string, stored: StoredJob): Promise<void>;
  /** A message moved to the dead-letter list. */
  dead(queue: string, letter: DeadLetter): void;
  /** A message acknowledged, discarded, taken out or pushed out. */
  forget(queue: string, jobId: string): void;
  close(): Promise<void>;
}

/** The named database of iii-queue in the embedded store. */
const DB_NAME = 'queue';

type Row = { held: StoredJob } | { dead: DeadLetter };

/** The journal in the embedded store: rows keyed `[queue, job id]`, in enqueue order. */
export class FileQueueJournal implements QueueJournal {
  private readonly table: OrderedTable<Row>;
  private readonly kept = new Map<string, KeptQueue>();

  private constructor(
    private readonly store: EmbeddedStore,
    private readonly logger: Logger,
  ) {
    this.table = new OrderedTable(store.db<OrderedRow<Row>>(DB_NAME));
    for (const {
      key: [queue],
      value,
    } of this.table.load()) {
      let kept = this.kept.get(queue);
      if (!kept) this.kept.set(queue, (kept = { held: [], dead: [] }));
      if ('held' in value) kept.held.push(value.held);
      else kept.dead.push(value.dead);
    }
  }

  /** Opens the store in `directory` (created if missing) and reads what it keeps. */
  static open(directory: string, logger: Logger): FileQueueJournal {
    return new FileQueueJournal(EmbeddedStore.open(directory), logger);
  }

  take(queue: string): KeptQueue {
    const kept = this.kept.get(queue) ?? { held: [], dead: [] };
    this.kept.delete(queue);
    return kept;
  }

  hold(queue: string, stored: StoredJob): Promise<void> {
    return this.table.put([queue, stored.job.id], { held: stored }).catch((err: unknown) => {
      this.failed(err, queue, stored.job.id);
      throw err;
    });
  }

  dead(queue: string, letter: DeadLetter): void {
    this.table
      .put([queue, letter.job.id], { dead: letter })
      .catch((err: unknown) => this.failed(err, queue, letter.job.id));
  }

  forget(queue: string, jobId: string): void {
    this.table.remove([queue, jobId]).catch((err: unknown) => this.failed(err, queue, jobId));
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private failed(err: unknown, queue: string, jobId: string): void {
    this.logger.error(
      { err, queue, jobId },
      'iii-queue could not write a message change to its store; after a restart the message may be delivered again',
    );
  }
}
