import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../../observability/logger';
import { workerOptions, type BullJobData } from './bullmq-options';

export type BullProcessor = (job: Job<BullJobData>) => Promise<void>;

/**
 * One BullMQ Worker consuming one queue on this node (every node runs one per queue: competing
 * consumers). Counts its deliveries in flight so a graceful stop can wait for them, bounded,
 * and only then close the Worker: a forced close would drop their acknowledgements.
 */
export class BullmqConsumer {
  private readonly worker: Worker<BullJobData>;
  private inFlight = 0;
  private idleWaiters: ((idle: boolean) => void)[] = [];
  private gaveUp = false;
  private stopping: Promise<void> | undefined;

  constructor(
    queueName: string,
    prefix: string,
    connection: Redis,
    concurrency: number,
    process: BullProcessor,
    private readonly logger: Logger,
    onFailed: (job: Job<BullJobData> | undefined) => void,
  ) {
    this.worker = new Worker<BullJobData>(
      queueName,
      (job) => this.track(process, job),
      workerOptions(connection, prefix, concurrency),
    );
    // Without a listener an `error` event would throw; they are expected while Redis is down.
    this.worker.on('error', (err: Error) =>
      this.logger.debug({ err, queue: queueName }, 'queue consumer: redis error (retrying)'),
    );
    this.worker.on('failed', (job) => onFailed(job));
  }

  set concurrency(value: number) {
    this.worker.concurrency = value;
  }

  /**
   * Stops fetching, waits up to `graceMs` for deliveries in flight (a later call may shorten the
   * wait; Infinity waits for them all), then closes the Worker and its connections. Deliveries
   * still running then are abandoned: their locks lapse and another node's stalled-job check
   * puts them back in line.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= this.shutdown();
    if (Number.isFinite(graceMs)) {
      const timer = setTimeout(() => this.giveUp(), graceMs);
      void this.stopping.finally(() => clearTimeout(timer));
    }
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await this.worker.pause(true).catch((err: unknown) => this.logger.debug({ err }, 'queue consumer: pause failed'));
    const idle =
      this.inFlight === 0 ||
      (!this.gaveUp && (await new Promise<boolean>((resolve) => this.idleWaiters.push(resolve))));
    await this.worker.close(!idle).catch((err: unknown) => this.logger.debug({ err }, 'queue consumer: close failed'));
  }

  private giveUp(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve(false);
    this.gaveUp = true;
  }

  private async track(process: BullProcessor, job: Job<BullJobData>): Promise<void> {
    this.inFlight++;
    try {
      await process(job);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve(true);
    }
  }
}
