import type { Channel, ChannelModel, GetMessage, Options } from 'amqplib';
import type { Logger } from '../../../observability/logger';
import { EngineError, ErrorCode } from '../../../protocol/errors';
import { backoffDelayMs } from '../backoff';
import { QueueErrorCode } from '../errors';
import type { DeadLetter, Deliver, QueueAdapter, QueueCounts, QueueJob, QueueSpec } from './adapter';
import { InFlight } from './in-flight';
import { letterOf, onOwnChannel, take } from './rabbitmq-browse';
import { RabbitmqConsumer, parseJob } from './rabbitmq-consumer';
import { RabbitmqLink } from './rabbitmq-link';
import {
  DLQ_OPTIONS,
  Header,
  MAX_PRIORITY,
  mainQueueOptions,
  rabbitNames,
  retryQueueOptions,
  type RabbitNames,
} from './rabbitmq-names';

/** How long a publish may wait for the broker's confirm (it withholds it under a resource alarm), in ms. */
export const CONFIRM_TIMEOUT_MS = 10_000;

export interface RabbitmqAdapterOptions {
  /** `adapter.config.amqp_url`, e.g. `amqp://guest:guest@localhost:5672`. */
  url: string;
  /** Put before every queue name (the cluster's key prefix, `iii:`): clusters can share a broker. */
  namePrefix: string;
  /** Names the connection in the broker's connection list, e.g. `iii:<node>:queue`. */
  connectionName: string;
  logger: Logger;
  /** `adapter.config.priority_field`: the field of a message's data holding its priority (0-9). */
  priorityField?: string;
  /** Hears of dead letters pushed out by `maxDeadLetters`. */
  onDeadLetterDropped: (queue: string, dropped: DeadLetter) => void;
  /** How long the first connection may take before `declare` fails, in ms (default 10 000). */
  connectTimeoutMs?: number;
}

/** One adapter queue: its policy, names, and this node's consumer of it. */
interface RabbitQueue {
  spec: QueueSpec;
  names: RabbitNames;
  /** Deliveries in flight on this node. */
  active: number;
  deliver?: Deliver;
  consumer?: RabbitmqConsumer;
}

/**
 * `iii-queue` on RabbitMQ (AMQP 0-9-1), shared by every node of a cluster. Per adapter queue:
 * a durable priority queue of ready messages, one durable retry queue per backoff delay, and
 * a durable dead-letter queue (names in rabbitmq-names.ts). Every node consumes every queue it
 * has a consumer for (competing consumers, prefetch = concurrency, manual acks).
 *
 * A failed attempt is republished (with confirms) to the retry queue of its delay, carrying
 * its attempt count in a header, then acknowledged; the retry queue's TTL dead-letters it back
 * to the main queue when the backoff has passed. After the last attempt it goes to the
 * dead-letter queue with the error. A node that dies mid-delivery leaves its messages
 * unacknowledged: the broker redelivers them to another node (at-least-once; that attempt is
 * not counted, as a BullMQ stall is not).
 */
export class RabbitmqQueueAdapter implements QueueAdapter {
  readonly name = 'rabbitmq';
  private readonly queues = new Map<string, RabbitQueue>();
  private readonly link: RabbitmqLink;
  private readonly inFlight = new InFlight();
  private closed = false;

  constructor(private readonly options: RabbitmqAdapterOptions) {
    this.link = new RabbitmqLink(
      options.url,
      options.connectionName,
      options.logger,
      (model) => this.reconnected(model),
      options.connectTimeoutMs,
    );
  }

  async declare(spec: QueueSpec): Promise<void> {
    await this.broker(spec.label, () => this.link.ready());
    const existing = this.queues.get(spec.name);
    const queue: RabbitQueue = existing ?? { spec, names: rabbitNames(this.options.namePrefix, spec.name), active: 0 };
    queue.spec = spec;
    await this.broker(spec.label, () => this.assertQueues(queue));
    this.queues.set(spec.name, queue);
    await queue.consumer?.applyPrefetch().catch(() => undefined);
  }

  async enqueue(name: string, job: QueueJob): Promise<number> {
    const queue = this.queue(name);
    try {
      const dropped = await this.makeRoom(queue);
      await this.publish(queue.names.main, job, { [Header.attempts]: 0 }, this.priorityOf(job));
      return dropped;
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError(
        ErrorCode.enqueueError,
        `Queue '${queue.spec.label}': the message was not enqueued: ${(err as Error).message}`,
      );
    }
  }

  async startConsumer(name: string, deliver: Deliver): Promise<void> {
    const queue = this.queue(name);
    await queue.consumer?.cancel();
    queue.deliver = deliver;
    queue.consumer = this.consumerOf(queue, deliver);
    await this.broker(queue.spec.label, async () => queue.consumer!.open(this.link.model()));
  }

  async stopConsumer(name: string): Promise<void> {
    const queue = this.queues.get(name);
    if (!queue) return;
    const consumer = queue.consumer;
    queue.deliver = undefined;
    queue.consumer = undefined;
    await consumer?.cancel();
  }

  async takeAll(name: string): Promise<QueueJob[]> {
    const queue = this.queues.get(name);
    if (!queue) return [];
    const sources = [queue.names.main, ...this.retryQueues(queue.spec).map((delay) => queue.names.retry(delay))];
    const jobs = await this.broker(queue.spec.label, () =>
      onOwnChannel(this.link.model(), async (channel) => {
        const taken: QueueJob[] = [];
        for (const source of sources) {
          for (let msg = await take(channel, source); msg; msg = await take(channel, source)) {
            const job = parseJob(msg);
            if (job) taken.push(job);
            channel.ack(msg);
          }
        }
        return taken;
      }),
    );
    return jobs.sort((a, b) => a.enqueuedAtMs - b.enqueuedAtMs);
  }

  async counts(name: string): Promise<QueueCounts> {
    const queue = this.queues.get(name);
    if (!queue) return { waiting: 0, delayed: 0, active: 0, deadLetters: 0 };
    return this.broker(queue.spec.label, async () => {
      const channel = await this.link.adminChannel();
      const depth = async (name: string, options: Options.AssertQueue) =>
        (await channel.assertQueue(name, options)).messageCount;
      const waiting = await this.passiveDepth(queue.names.main);
      let delayed = 0;
      for (const delay of this.retryQueues(queue.spec))
        delayed += await depth(queue.names.retry(delay), retryQueueOptions(queue.names.main, delay));
      const deadLetters = await depth(queue.names.dlq, DLQ_OPTIONS);
      // `active` is this node's: AMQP does not tell how many deliveries other consumers hold.
      return { waiting, delayed, active: queue.active, deadLetters };
    });
  }

  async deadLetters(name: string, offset: number, limit: number): Promise<DeadLetter[]> {
    const queue = this.queues.get(name);
    if (!queue || limit <= 0) return [];
    return this.broker(queue.spec.label, () =>
      onOwnChannel(this.link.model(), async (channel) => {
        const letters: DeadLetter[] = [];
        for (let seen = 0; seen < offset + limit; seen++) {
          const msg = await take(channel, queue.names.dlq);
          if (!msg) break;
          const letter = letterOf(msg);
          if (letter && seen >= offset) letters.push(letter);
        }
        return letters;
      }),
    );
  }

  async redriveAll(name: string): Promise<number> {
    const queue = this.queues.get(name);
    if (!queue) return 0;
    return this.broker(queue.spec.label, () =>
      onOwnChannel(this.link.model(), async (channel) => {
        // The letters there now: one that fails again meanwhile is not redriven twice.
        const count = (await channel.checkQueue(queue.names.dlq)).messageCount;
        let redriven = 0;
        for (let n = 0; n < count; n++) {
          const msg = await take(channel, queue.names.dlq);
          if (!msg) break;
          if (await this.redriveLetter(queue, channel, msg)) redriven++;
        }
        return redriven;
      }),
    );
  }

  async redrive(name: string, messageId: string): Promise<boolean> {
    const queue = this.queues.get(name);
    if (!queue) return false;
    return this.broker(queue.spec.label, () =>
      onOwnChannel(this.link.model(), async (channel) => {
        const msg = await this.findLetter(channel, queue, messageId);
        return msg !== undefined && (await this.redriveLetter(queue, channel, msg));
      }),
    );
  }

  async discard(name: string, messageId: string): Promise<boolean> {
    const queue = this.queues.get(name);
    if (!queue) return false;
    return this.broker(queue.spec.label, () =>
      onOwnChannel(this.link.model(), async (channel) => {
        const msg = await this.findLetter(channel, queue, messageId);
        if (msg) channel.ack(msg);
        return msg !== undefined;
      }),
    );
  }

  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.queues.values()].map((queue) => this.stopConsumer(queue.spec.name)));
    await this.inFlight.settled(graceMs);
    // Deliveries still running lose their channel: the broker gives their messages to another node.
    await this.link.close();
  }

  /** On every new connection (after a broker restart too): queues again, then the consumers. */
  private async reconnected(model: ChannelModel): Promise<void> {
    for (const queue of this.queues.values()) {
      await this.assertQueues(queue);
      // A consumer started meanwhile (startConsumer during this setup) is on this connection already.
      if (queue.deliver && !this.closed && !queue.consumer?.isOn(model)) {
        queue.consumer = this.consumerOf(queue, queue.deliver);
        await queue.consumer.open(model);
      }
    }
    if (this.queues.size > 0)
      this.options.logger.info({ queues: this.queues.size }, 'queue rabbitmq: connected again; consumers resumed');
  }

  private consumerOf(queue: RabbitQueue, deliver: Deliver): RabbitmqConsumer {
    return new RabbitmqConsumer(
      queue.names.main,
      deliver,
      {
        spec: () => queue.spec,
        failed: (job, made, error, priority) => this.failed(queue, job, made, error, priority),
        track: (delta) => this.track(queue, delta),
      },
      this.options.logger,
    );
  }

  /**
   * Declares the queue's main, dead-letter and retry queues. A main queue declared before with
   * other arguments (it switched between standard and FIFO) keeps them: RabbitMQ cannot change
   * them in place; the warning says how to apply the new ones.
   */
  private async assertQueues(queue: RabbitQueue): Promise<void> {
    const { names, spec } = queue;
    const model = this.link.model();
    try {
      // A channel of its own: a refused declaration (406) closes the channel it ran on.
      await onOwnChannel(model, (channel) =>
        channel.assertQueue(names.main, mainQueueOptions(spec.ordering === 'fifo')),
      );
    } catch (err) {
      await onOwnChannel(model, (channel) => channel.checkQueue(names.main));
      this.options.logger.warn(
        { queue: spec.label, rabbitQueue: names.main, err: (err as Error).message },
        'queue rabbitmq: the queue exists with other arguments (ordering changed?) and keeps them; delete it in RabbitMQ to apply the new ones',
      );
    }
    const admin = await this.link.adminChannel();
    await admin.assertQueue(names.dlq, DLQ_OPTIONS);
    for (const delay of this.retryQueues(spec))
      await admin.assertQueue(names.retry(delay), retryQueueOptions(names.main, delay));
  }

  /** The message count of an existing queue, checked passively (a failed check throws). */
  private async passiveDepth(name: string): Promise<number> {
    return (await (await this.link.adminChannel()).checkQueue(name)).messageCount;
  }

  /** The backoff delays of the policy's retries, in ms (FIFO queues retry in the delivery). */
  private retryQueues(spec: QueueSpec): number[] {
    if (spec.ordering === 'fifo') return [];
    const delays = new Set<number>();
    for (let made = 1; made < spec.maxAttempts; made++) delays.add(backoffDelayMs(spec.backoffMs, made));
    return [...delays];
  }

  /** A failed attempt: the retry queue of its backoff, or the dead-letter queue after the last. */
  private async failed(
    queue: RabbitQueue,
    job: QueueJob,
    made: number,
    error: string,
    priority: number | undefined,
  ): Promise<void> {
    const { spec, names } = queue;
    if (made < spec.maxAttempts && spec.ordering === 'standard') {
      const delay = backoffDelayMs(spec.backoffMs, made);
      // Declared again before each use: keeps it alive past its idle expiry and exists after a policy change.
      await (await this.link.adminChannel()).assertQueue(names.retry(delay), retryQueueOptions(names.main, delay));
      await this.publish(names.retry(delay), job, { [Header.attempts]: made }, priority);
      return;
    }
    if (spec.maxDeadLetters === 0) {
      this.options.onDeadLetterDropped(spec.label, { job, error, failedAtMs: Date.now(), attemptsMade: made });
      return;
    }
    await this.publish(
      names.dlq,
      job,
      { [Header.attempts]: made, [Header.error]: error, [Header.failedAt]: Date.now() },
      priority,
    );
    void this.trimDeadLetters(queue);
  }

  /** Drops the oldest dead letters beyond `maxDeadLetters`. */
  private async trimDeadLetters(queue: RabbitQueue): Promise<void> {
    const { spec, names } = queue;
    try {
      const excess = (await this.passiveDepth(names.dlq)) - spec.maxDeadLetters;
      if (excess <= 0) return;
      await onOwnChannel(this.link.model(), async (channel) => {
        for (let n = 0; n < excess; n++) {
          const msg = await take(channel, names.dlq);
          if (!msg) return;
          channel.ack(msg);
          const letter = letterOf(msg);
          if (letter) this.options.onDeadLetterDropped(spec.label, letter);
        }
      });
    } catch (err) {
      this.options.logger.warn(
        { err: (err as Error).message, queue: spec.label },
        'dead letters beyond max_dead_letters could not be trimmed',
      );
    }
  }

  /** Takes dead letters until `messageId`; the ones before it go back in place when the browse ends. */
  private async findLetter(channel: Channel, queue: RabbitQueue, messageId: string): Promise<GetMessage | undefined> {
    for (let msg = await take(channel, queue.names.dlq); msg; msg = await take(channel, queue.names.dlq)) {
      if (parseJob(msg)?.id === messageId) return msg;
    }
    return undefined;
  }

  /** Republishes a dead letter to the tail of its queue with its attempts reset, then removes it. */
  private async redriveLetter(queue: RabbitQueue, channel: Channel, msg: GetMessage): Promise<boolean> {
    const job = parseJob(msg);
    if (job) await this.publish(queue.names.main, job, { [Header.attempts]: 0 }, this.priorityOf(job));
    channel.ack(msg);
    return job !== undefined;
  }

  /**
   * Checks the depth before adding (producers on several nodes at once may overshoot by their
   * number). `drop_oldest` removes the oldest ready messages to make room. Only ready messages
   * count: AMQP does not report the ones held by consumers.
   */
  private async makeRoom(queue: RabbitQueue): Promise<number> {
    const { maxDepth, overflow, label } = queue.spec;
    let depth = await this.passiveDepth(queue.names.main);
    if (depth < maxDepth) return 0;
    if (overflow === 'reject') {
      throw new EngineError(
        QueueErrorCode.queueFull,
        `Queue '${label}' is full: it holds ${maxDepth} messages (max_depth); retry later or consume faster`,
      );
    }
    return onOwnChannel(this.link.model(), async (channel) => {
      let dropped = 0;
      while (depth >= maxDepth) {
        const msg = await take(channel, queue.names.main);
        if (!msg) break;
        channel.ack(msg);
        dropped++;
        depth--;
      }
      return dropped;
    });
  }

  /** Publishes persistently and waits for the broker's confirm. */
  private publish(
    queue: string,
    job: QueueJob,
    headers: Record<string, unknown>,
    priority: number | undefined,
  ): Promise<void> {
    const publisher = this.link.publisher();
    const options: Options.Publish = { persistent: true, messageId: job.id, contentType: 'application/json', headers };
    if (priority !== undefined) options.priority = priority;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`RabbitMQ did not confirm the message within ${CONFIRM_TIMEOUT_MS / 1000} s (resource alarm?)`),
          ),
        CONFIRM_TIMEOUT_MS,
      );
      const done = (err: unknown) => {
        clearTimeout(timer);
        if (err) reject(err instanceof Error ? err : new Error(`RabbitMQ refused the message (${String(err)})`));
        else resolve();
      };
      try {
        publisher.publish('', queue, Buffer.from(JSON.stringify(job)), options, done);
      } catch (err) {
        done(err);
      }
    });
  }

  /** `data[priority_field]` as a priority 0..MAX_PRIORITY (rounded, clamped); none without it. */
  private priorityOf(job: QueueJob): number | undefined {
    const field = this.options.priorityField;
    const data = job.data;
    if (!field || typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
    const value = data[field];
    return typeof value === 'number' && Number.isFinite(value)
      ? Math.min(MAX_PRIORITY, Math.max(0, Math.round(value)))
      : undefined;
  }

  private track(queue: RabbitQueue, delta: 1 | -1): void {
    queue.active += delta;
    this.inFlight.add(delta);
  }

  private queue(name: string): RabbitQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`queue ${name} was not declared`);
    return queue;
  }

  /** Runs a broker operation, naming the queue in its failure. */
  private async broker<T>(label: string, what: () => Promise<T>): Promise<T> {
    try {
      return await what();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new Error(`Queue '${label}': RabbitMQ failed: ${(err as Error).message}`);
    }
  }
}
