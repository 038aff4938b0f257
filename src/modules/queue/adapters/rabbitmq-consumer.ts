import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../../observability/logger';
import { backoffDelayMs } from '../backoff';
import type { Deliver, QueueJob, QueueSpec } from './adapter';
import { Header } from './rabbitmq-names';

/** Wait before a message whose failure could not be recorded goes back to its queue, in ms. */
const REQUEUE_PAUSE_MS = 1000;

/** What a consumer asks of its adapter. */
export interface ConsumerHooks {
  /** The queue's current policy (a redeclaration changes it from the next delivery on). */
  spec(): QueueSpec;
  /**
   * Records a failed attempt durably (a retry message, or a dead letter after the last
   * attempt); the consumer acknowledges the delivery only after it resolves.
   */
  failed(job: QueueJob, attemptsMade: number, error: string, priority: number | undefined): Promise<void>;
  /** A delivery started (+1) or ended (-1): the adapter counts them for `counts` and `close`. */
  track(delta: 1 | -1): void;
}

/**
 * This node's consumer of one main queue, on a channel of its own (a channel error stays
 * here). Manual acknowledgements; the channel's prefetch is the queue's concurrency, so the
 * broker hands this node at most that many messages at once and the rest go to the other
 * nodes' consumers. A message is acknowledged only after its outcome is durable: success, or
 * its failure recorded; a node that dies before that leaves it unacknowledged and the broker
 * gives it to another consumer (at-least-once).
 *
 * FIFO queues (single active consumer, prefetch 1) retry inside the delivery after the
 * backoff, so nothing of the queue overtakes a failing message.
 */
export class RabbitmqConsumer {
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  private stopped = false;
  /** The connection it consumes on (a reconnection replaces consumers of older ones). */
  private model: ChannelModel | undefined;
  /** This consumer's deliveries in flight (its channel closes when stopped and idle). */
  private inFlight = 0;

  constructor(
    private readonly queue: string,
    private readonly deliver: Deliver,
    private readonly hooks: ConsumerHooks,
    private readonly logger: Logger,
  ) {}

  /** Opens the channel and starts consuming on a (new) connection. */
  async open(model: ChannelModel): Promise<void> {
    this.model = model;
    const channel = await model.createChannel();
    channel.on('error', (err: Error) =>
      this.logger.debug({ err: err.message, queue: this.queue }, 'queue rabbitmq: consumer channel error'),
    );
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    await this.applyPrefetch();
    const { consumerTag } = await channel.consume(this.queue, (msg) => {
      if (msg) void this.handle(channel, msg);
      else
        this.logger.warn(
          { queue: this.queue },
          'queue rabbitmq: the broker cancelled a consumer (queue deleted?); it restarts on the next connection',
        );
    });
    this.consumerTag = consumerTag;
  }

  /** Consuming (or about to) on this connection. */
  isOn(model: ChannelModel): boolean {
    return this.model === model && !this.stopped;
  }

  /** Sets the prefetch from the current policy; per channel, so it applies at once. */
  async applyPrefetch(): Promise<void> {
    const spec = this.hooks.spec();
    await this.channel?.prefetch(spec.ordering === 'fifo' ? 1 : spec.concurrency, true);
  }

  /**
   * Stops taking messages; deliveries in flight go on and are acknowledged on the still open
   * channel, which closes after the last of them.
   */
  async cancel(): Promise<void> {
    this.stopped = true;
    const channel = this.channel;
    if (!channel || this.consumerTag === undefined) return;
    await channel.cancel(this.consumerTag).catch(() => undefined);
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    const channel = this.channel;
    if (!this.stopped || this.inFlight > 0 || !channel) return;
    this.channel = undefined;
    void channel.close().catch(() => undefined);
  }

  private async handle(channel: Channel, msg: ConsumeMessage): Promise<void> {
    this.hooks.track(1);
    this.inFlight++;
    try {
      const job = parseJob(msg);
      if (!job) {
        this.logger.warn(
          { queue: this.queue, messageId: msg.properties.messageId },
          'queue rabbitmq: a message that is not a queue job was dropped',
        );
        settle(channel, msg, 'ack');
        return;
      }
      const made = attemptsOf(msg);
      const outcome =
        this.hooks.spec().ordering === 'fifo' ? await this.runInOrder(job, made) : await this.runOnce(job, made);
      if (outcome === 'abandoned') return settle(channel, msg, 'requeue');
      if (outcome !== 'ok') {
        try {
          await this.hooks.failed(job, outcome.attemptsMade, outcome.error, priorityOf(msg));
        } catch (err) {
          // The broker is out of reach or refused the record: keep the message and its count.
          this.logger.warn(
            { err: (err as Error).message, queue: this.queue, jobId: job.id },
            'queue rabbitmq: a failed attempt could not be recorded; the message goes back to its queue',
          );
          await new Promise((resolve) => setTimeout(resolve, REQUEUE_PAUSE_MS));
          return settle(channel, msg, 'requeue');
        }
      }
      settle(channel, msg, 'ack');
    } finally {
      this.inFlight--;
      this.hooks.track(-1);
      this.closeIfIdle();
    }
  }

  private async runOnce(job: QueueJob, made: number): Promise<'ok' | Failure> {
    const error = await attempt(this.deliver, job, made + 1);
    return error === undefined ? 'ok' : { attemptsMade: made + 1, error };
  }

  /** Attempts until success or the last attempt, waiting out the backoff in between. */
  private async runInOrder(job: QueueJob, made: number): Promise<'ok' | 'abandoned' | Failure> {
    for (;;) {
      const error = await attempt(this.deliver, job, made + 1);
      if (error === undefined) return 'ok';
      made++;
      const spec = this.hooks.spec();
      if (made >= spec.maxAttempts) return { attemptsMade: made, error };
      await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(spec.backoffMs, made)));
      // Stopped during the backoff: the message goes back to the head for the next consumer.
      if (this.stopped) return 'abandoned';
    }
  }
}

interface Failure {
  attemptsMade: number;
  error: string;
}

async function attempt(deliver: Deliver, job: QueueJob, n: number): Promise<string | undefined> {
  try {
    await deliver(job, n);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Acks or requeues; on a channel that closed meanwhile the broker has requeued it already. */
function settle(channel: Channel, msg: ConsumeMessage, how: 'ack' | 'requeue'): void {
  try {
    if (how === 'ack') channel.ack(msg);
    else channel.nack(msg, false, true);
  } catch {
    // Channel closed (connection lost or adapter closed): the delivery is redelivered.
  }
}

export function parseJob(msg: { content: Buffer }): QueueJob | undefined {
  try {
    const job = JSON.parse(msg.content.toString('utf8')) as QueueJob;
    return typeof job === 'object' && job !== null && typeof job.id === 'string' && typeof job.functionId === 'string'
      ? job
      : undefined;
  } catch {
    return undefined;
  }
}

export function attemptsOf(msg: { properties: { headers?: Record<string, unknown> | undefined } }): number {
  const made = msg.properties.headers?.[Header.attempts];
  return typeof made === 'number' && Number.isInteger(made) && made >= 0 ? made : 0;
}

export function priorityOf(msg: { properties: { priority?: unknown } }): number | undefined {
  const priority = msg.properties.priority;
  return typeof priority === 'number' ? priority : undefined;
}
