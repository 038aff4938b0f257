import { Queue, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { isRedisCluster } from '../../../cluster/redis-connection';
import { closeRedis, connectRedis, type RedisTarget } from '../../../cluster/redis-target';
import type { Logger } from '../../../observability/logger';
import { EngineError } from '../../../protocol/errors';
import { backoffDelayMs } from '../backoff';
import { QueueErrorCode } from '../errors';
import type { DeadLetter, Deliver, QueueAdapter, QueueCounts, QueueJob, QueueSpec } from './adapter';
import { BullmqConsumer } from './bullmq-consumer';
import {
  MAX_FIFO_LANES,
  bullJobId,
  bullPrefix,
  bullQueueName,
  fifoLane,
  jobOptions,
  workerConnectionTemplate,
  type BullJobData,
} from './bullmq-options';

/** The iii code of a failed `enqueue` action: Redis refused or could not take the message. */
const ENQUEUE_ERROR = 'enqueue_error';

/** Job states that hold a message not yet delivered (BullMQ 6 has no `paused` list). */
const HELD_STATES = ['wait', 'prioritized', 'delayed'] as const;

/** Sentinel mode: how long an enqueue waits for a replica to confirm the job, in ms (see replicated()). */
const REPLICA_WAIT_MS = 1000;
/** Cluster mode: how long a primary's replica count is trusted before it is asked again, in ms. */
const REPLICAS_RECHECK_MS = 5000;

export interface BullmqAdapterOptions extends RedisTarget {
  /** Names the connections in CLIENT LIST, e.g. `iii:<node>:queue`. */
  connectionName: string;
  logger: Logger;
  /** Hears of dead letters pushed out by `maxDeadLetters`. */
  onDeadLetterDropped: (queue: string, dropped: DeadLetter) => void;
}

/** One BullMQ queue and this node's Worker on it. */
interface Lane {
  queue: Queue<BullJobData>;
  consumer?: BullmqConsumer;
}

/** An adapter queue: one lane (standard) or a fixed set of lanes (FIFO). */
interface BullLine {
  spec: QueueSpec;
  /** The BullMQ prefix of its lanes (bullPrefix: hash-tagged in Cluster mode). */
  prefix: string;
  /** The ordering the lanes were laid out for (fixed at the first declaration). */
  ordering: QueueSpec['ordering'];
  lanes: Lane[];
}

/**
 * `iii-queue` on BullMQ, shared by every node of a cluster: BullMQ queues under
 * `<keyPrefix>bull:` (`<keyPrefix>bull:{<queue>}:` on a Redis Cluster: see bullPrefix), a
 * Worker per queue on every node (competing consumers; the delivery is routed by the engine to
 * wherever the function's worker lives), and BullMQ's failed set as the
 * dead-letter queue. A node that dies while holding jobs loses their locks; the stalled-job
 * check on the other nodes puts them back at the head of their queue (at-least-once).
 *
 * Standard queues: one BullMQ queue; BullMQ retries (attempts, exponential backoff); a retried
 * job waits in the delayed set, then rejoins at the tail, so later messages may overtake it.
 *
 * FIFO queues: lanes (`<name>#<n>`), a message group always in the same lane; each lane delivers
 * one message at a time cluster-wide (BullMQ global concurrency 1) and retries inside the
 * delivery, so a group is strictly ordered even under retry and after a node's death. A retry
 * blocks its lane: the groups hashed to it wait, the other lanes flow.
 */
export class BullmqQueueAdapter implements QueueAdapter {
  readonly name = 'redis';
  private readonly lines = new Map<string, BullLine>();
  private readonly retiring = new Set<BullmqConsumer>();
  private readonly opening = new Map<string, Promise<void>>();
  private producer: Promise<Redis> | undefined;
  /** A "no replica confirmed" warning was logged and no replica has confirmed since. */
  private unreplicatedWarned = false;
  /** Cluster mode: the slot of each queue's keys (primaryOf). */
  private readonly slots = new Map<string, number>();
  /** Cluster mode: whether each primary (host:port) had a replica connected, and when that was asked. */
  private readonly replicas = new Map<string, { connected: boolean; atMs: number }>();
  private readonly template: Redis;

  constructor(private readonly options: BullmqAdapterOptions) {
    // A key prefix that cannot hash-tag the queues is refused now, not at the first declaration.
    bullPrefix(options, 'q');
    this.template = workerConnectionTemplate(options, `${options.connectionName}:worker`);
  }

  async declare(spec: QueueSpec): Promise<void> {
    // Two declarations at once (bindings registered together) must lay the lanes out once.
    await this.opening.get(spec.name);
    const existing = this.lines.get(spec.name);
    if (existing) {
      existing.spec = spec;
      if (existing.ordering === 'standard')
        for (const lane of existing.lanes) if (lane.consumer) lane.consumer.concurrency = spec.concurrency;
      return;
    }
    const opening = this.open(spec);
    this.opening.set(spec.name, opening);
    try {
      await opening;
    } finally {
      this.opening.delete(spec.name);
    }
  }

  private async open(spec: QueueSpec): Promise<void> {
    const prefix = bullPrefix(this.options, spec.name);
    const redis = await this.connection();
    const names = spec.ordering === 'fifo' ? await this.laneNames(redis, prefix, spec) : [spec.name];
    const lanes = names.map((name): Lane => {
      const queue = new Queue<BullJobData>(bullQueueName(name), { connection: redis, prefix });
      queue.on('error', (err: Error) => this.options.logger.debug({ err, queue: spec.label }, 'queue: redis error'));
      return { queue };
    });
    try {
      // FIFO: one delivery at a time per lane across the cluster, whatever each node's Worker allows.
      await this.redis(spec.label, () =>
        Promise.all(
          lanes.map((l) =>
            spec.ordering === 'fifo' ? l.queue.setGlobalConcurrency(1) : l.queue.removeGlobalConcurrency(),
          ),
        ),
      );
    } catch (err) {
      await Promise.all(lanes.map((l) => l.queue.close().catch(() => undefined)));
      throw err;
    }
    this.lines.set(spec.name, { spec, prefix, ordering: spec.ordering, lanes });
  }

  async enqueue(name: string, job: QueueJob): Promise<number> {
    const line = this.line(name);
    const lane = line.lanes[line.ordering === 'fifo' ? fifoLane(job.group ?? '', line.lanes.length) : 0];
    try {
      const dropped = await this.makeRoom(line);
      await lane.queue.add('message', { job }, jobOptions(line.ordering, line.spec, job));
      if (this.options.sentinel !== undefined || this.options.cluster !== undefined) await this.replicated(line.prefix);
      return dropped;
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError(
        ENQUEUE_ERROR,
        `Queue '${line.spec.label}': the message was not enqueued, Redis failed: ${(err as Error).message}`,
      );
    }
  }

  async startConsumer(name: string, deliver: Deliver): Promise<void> {
    const line = this.line(name);
    const fifo = line.ordering === 'fifo';
    for (const lane of line.lanes) {
      if (lane.consumer) this.retire(lane.consumer);
      lane.consumer = new BullmqConsumer(
        lane.queue.name,
        line.prefix,
        this.template,
        fifo ? 1 : line.spec.concurrency,
        (job) => (fifo ? this.deliverInOrder(line, deliver, job) : deliver(job.data.job, job.attemptsMade + 1)),
        this.options.logger,
        (job) => {
          if (job && job.finishedOn !== undefined) void this.trimDeadLetters(line);
        },
      );
    }
  }

  async stopConsumer(name: string): Promise<void> {
    for (const lane of this.lines.get(name)?.lanes ?? []) {
      if (lane.consumer) this.retire(lane.consumer);
      lane.consumer = undefined;
    }
  }

  async takeAll(name: string): Promise<QueueJob[]> {
    const line = this.lines.get(name);
    if (!line) return [];
    const taken: QueueJob[] = [];
    for (const lane of line.lanes) {
      const held = await this.redis(line.spec.label, () => lane.queue.getJobs([...HELD_STATES], 0, -1, true));
      for (const job of held) {
        // REMOVE answers 1 to one caller only: two nodes taking at once split the messages.
        if ((await this.redis(line.spec.label, () => lane.queue.remove(job.id!))) === 1) taken.push(job.data.job);
      }
    }
    return taken.sort((a, b) => a.enqueuedAtMs - b.enqueuedAtMs);
  }

  async counts(name: string): Promise<QueueCounts> {
    const sum: QueueCounts = { waiting: 0, delayed: 0, active: 0, deadLetters: 0 };
    const line = this.lines.get(name);
    for (const lane of line?.lanes ?? []) {
      const c = await this.redis(line!.spec.label, () =>
        lane.queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed'),
      );
      sum.waiting += (c['wait'] ?? 0) + (c['prioritized'] ?? 0);
      sum.delayed += c['delayed'] ?? 0;
      sum.active += c['active'] ?? 0;
      sum.deadLetters += c['failed'] ?? 0;
    }
    return sum;
  }

  async deadLetters(name: string, offset: number, limit: number): Promise<DeadLetter[]> {
    const line = this.lines.get(name);
    if (!line || limit <= 0) return [];
    const letters = (await this.failedJobs(line, offset + limit)).map(deadLetterOf);
    return letters.sort((a, b) => a.failedAtMs - b.failedAtMs).slice(offset, offset + limit);
  }

  async redriveAll(name: string): Promise<number> {
    const line = this.lines.get(name);
    if (!line) return 0;
    // The jobs first: a redriven message that fails again must not be redriven twice.
    const failed = await this.failedJobs(line, -1);
    let redriven = 0;
    for (const job of failed) if (await this.retry(line, job)) redriven++;
    return redriven;
  }

  async redrive(name: string, messageId: string): Promise<boolean> {
    const line = this.lines.get(name);
    const found = line && (await this.failedJob(line, messageId));
    return line !== undefined && found !== undefined && this.retry(line, found.job);
  }

  async discard(name: string, messageId: string): Promise<boolean> {
    const line = this.lines.get(name);
    const found = line && (await this.failedJob(line, messageId));
    if (!line || !found) return false;
    return (await this.redis(line.spec.label, () => found.lane.queue.remove(found.job.id!))) === 1;
  }

  async close(graceMs: number): Promise<void> {
    for (const name of this.lines.keys()) await this.stopConsumer(name);
    await Promise.all([...this.retiring].map((consumer) => consumer.stop(graceMs)));
    const queues = [...this.lines.values()].flatMap((line) => line.lanes.map((lane) => lane.queue));
    await Promise.all(queues.map((queue) => queue.close().catch(() => undefined)));
    this.lines.clear();
    const producer = this.producer;
    this.producer = undefined;
    if (producer) await producer.then(closeRedis, () => undefined);
    this.template.disconnect();
  }

  /**
   * The lane queues of a FIFO queue. The first node to declare it fixes the lane count in Redis
   * (SET NX): every node, now and after any restart, hashes a group to the same lane.
   */
  private async laneNames(redis: Redis, prefix: string, spec: QueueSpec): Promise<string[]> {
    const key = `${prefix}:${bullQueueName(spec.name)}:lanes`;
    const wanted = Math.min(Math.max(1, spec.concurrency), MAX_FIFO_LANES);
    const count = await this.redis(spec.label, async () => {
      await redis.set(key, String(wanted), 'NX');
      return Number(await redis.get(key)) || wanted;
    });
    return Array.from({ length: count }, (_, n) => `${spec.name}#${n}`);
  }

  /**
   * A FIFO delivery: retries run here, after the backoff, before anything else of the lane (its
   * global concurrency is 1). The attempts answered are kept in the job's progress, so a delivery
   * taken over after a node's death continues the count. The last failure dead-letters the job.
   */
  private async deliverInOrder(line: BullLine, deliver: Deliver, bull: Job<BullJobData>): Promise<void> {
    let made = typeof bull.progress === 'number' ? bull.progress : 0;
    for (;;) {
      try {
        await deliver(bull.data.job, made + 1);
        return;
      } catch (err) {
        made++;
        await bull.updateProgress(made);
        if (made >= line.spec.maxAttempts) throw err;
        await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(line.spec.backoffMs, made)));
      }
    }
  }

  /** With `drop_oldest`, removes the oldest waiting messages until one more fits; else checks depth. */
  private async makeRoom(line: BullLine): Promise<number> {
    const { maxDepth, overflow, label } = line.spec;
    const held = async () => {
      const c = await this.counts(line.spec.name);
      return c.waiting + c.delayed + c.active;
    };
    let count = await held();
    let dropped = 0;
    while (overflow === 'drop_oldest' && count >= maxDepth) {
      const oldest = await this.oldestWaiting(line);
      if (!oldest) break;
      dropped += await oldest.lane.queue.remove(oldest.job.id!);
      count = await held();
    }
    // Checked, then added: producers on several nodes at once may overshoot by their number.
    if (count >= maxDepth) {
      throw new EngineError(
        QueueErrorCode.queueFull,
        `Queue '${label}' is full: it holds ${maxDepth} messages (max_depth); retry later or consume faster`,
      );
    }
    return dropped;
  }

  private async oldestWaiting(line: BullLine): Promise<{ lane: Lane; job: Job<BullJobData> } | undefined> {
    let oldest: { lane: Lane; job: Job<BullJobData> } | undefined;
    for (const lane of line.lanes) {
      const [job] = await lane.queue.getJobs(['wait'], 0, 0, true);
      if (job && (!oldest || job.data.job.enqueuedAtMs < oldest.job.data.job.enqueuedAtMs)) oldest = { lane, job };
    }
    return oldest;
  }

  /** The oldest `count` dead letters of each lane (-1: all), unsorted across lanes. */
  private async failedJobs(line: BullLine, count: number): Promise<Job<BullJobData>[]> {
    const end = count < 0 ? -1 : count - 1;
    const pages = await this.redis(line.spec.label, () =>
      Promise.all(line.lanes.map((lane) => lane.queue.getJobs(['failed'], 0, end, true))),
    );
    return pages.flat();
  }

  private async failedJob(
    line: BullLine,
    messageId: string,
  ): Promise<{ lane: Lane; job: Job<BullJobData> } | undefined> {
    for (const lane of line.lanes) {
      const job = await this.redis(line.spec.label, () => lane.queue.getJob(bullJobId(messageId)));
      if (job && (await this.redis(line.spec.label, () => job.isFailed()))) return { lane, job };
    }
    return undefined;
  }

  /** Moves a dead letter back to the tail of its lane with its attempts reset. */
  private async retry(line: BullLine, job: Job<BullJobData>): Promise<boolean> {
    try {
      await job.updateProgress(0);
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    } catch (err) {
      // Redriven or discarded meanwhile (by another node): not ours to count.
      if (!(await job.isFailed().catch(() => true))) return false;
      throw new Error(`Queue '${line.spec.label}': redrive of ${job.data.job.id} failed: ${(err as Error).message}`);
    }
  }

  /** Drops the oldest dead letters beyond `maxDeadLetters`. */
  private async trimDeadLetters(line: BullLine): Promise<void> {
    try {
      const excess = (await this.counts(line.spec.name)).deadLetters - line.spec.maxDeadLetters;
      if (excess <= 0) return;
      const failed = (await this.failedJobs(line, excess))
        .sort((a, b) => (a.finishedOn ?? 0) - (b.finishedOn ?? 0))
        .slice(0, excess);
      for (const job of failed) {
        const lane = line.lanes.find((l) => l.queue.name === job.queueName)!;
        if ((await lane.queue.remove(job.id!)) === 1)
          this.options.onDeadLetterDropped(line.spec.label, deadLetterOf(job));
      }
    } catch (err) {
      this.options.logger.warn(
        { err, queue: line.spec.label },
        'dead letters beyond max_dead_letters could not be trimmed',
      );
    }
  }

  /** Stops a consumer in the background; `close` waits for it (bounded by its grace). */
  private retire(consumer: BullmqConsumer): void {
    this.retiring.add(consumer);
    void consumer.stop(Number.POSITIVE_INFINITY).finally(() => this.retiring.delete(consumer));
  }

  /**
   * Sentinel and Cluster mode: a job is acknowledged once a replica has it too. Replication is
   * asynchronous, so a primary killed right after answering would take the job with it; the
   * sentinels (or the shard's replicas) promote the replica that is furthest ahead, so one
   * replica holding it is enough (WAIT covers every earlier write of this connection). When no
   * replica answers within REPLICA_WAIT_MS (all of them down), the job is still acknowledged,
   * durable as on a single Redis, and a warning says so once per outage.
   *
   * On a Redis Cluster, WAIT must go to the connection that wrote the job: the one to the primary
   * of the queue's slot (all its keys share one, `prefix` holds its hash tag). A shard without
   * replicas is not waited for (its WAIT would only ever time out).
   */
  private async replicated(prefix: string): Promise<void> {
    const producer = await this.connection();
    const redis = isRedisCluster(producer) ? await this.primaryOf(producer as unknown as Cluster, prefix) : producer;
    // A shard without replicas has no one to wait for: WAIT would only add its timeout.
    if (redis === undefined) return;
    const replicas = Number(await redis.call('WAIT', 1, REPLICA_WAIT_MS));
    if (replicas > 0) {
      this.unreplicatedWarned = false;
      return;
    }
    if (this.unreplicatedWarned) return;
    this.unreplicatedWarned = true;
    this.options.logger.warn(
      { waitedMs: REPLICA_WAIT_MS },
      'queue: no Redis replica confirmed an enqueued job; jobs are acknowledged from the primary alone until one does',
    );
  }

  /**
   * The Cluster's connection to the primary that serves `key`'s slot, as its slot map says now
   * (it follows MOVED and failovers); undefined when it has no replica to wait for. The slot is
   * asked once per key (CLUSTER KEYSLOT): the Cluster client keeps the slot map, not a way to
   * hash a key.
   */
  private async primaryOf(cluster: Cluster, key: string): Promise<Redis | undefined> {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = Number(await cluster.cluster('KEYSLOT', key));
      this.slots.set(key, slot);
    }
    const owner = cluster.slots[slot]?.[0];
    const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) throw new Error(`no connection to the primary of slot ${slot} (${owner ?? 'unknown'}) yet`);
    return (await this.hasReplicas(node, owner)) ? node : undefined;
  }

  /**
   * Whether a Cluster primary has a replica connected (`INFO replication`), asked at most every
   * REPLICAS_RECHECK_MS: the client's slot map lists a shard's replicas only as of its last
   * refresh, and not at all until they are in sync.
   */
  private async hasReplicas(node: Redis, key: string): Promise<boolean> {
    const known = this.replicas.get(key);
    if (known !== undefined && Date.now() - known.atMs < REPLICAS_RECHECK_MS) return known.connected;
    const connected = Number(/connected_slaves:(\d+)/.exec(await node.info('replication'))?.[1] ?? 0) > 0;
    this.replicas.set(key, { connected, atMs: Date.now() });
    return connected;
  }

  /** The producer connection, shared by every Queue: fails commands at once while Redis is down. */
  private connection(): Promise<Redis> {
    if (!this.producer) {
      const connecting = connectRedis(this.options, this.options.connectionName, this.options.logger);
      // A failed first connect is retried by the next caller.
      connecting.catch(() => {
        if (this.producer === connecting) this.producer = undefined;
      });
      this.producer = connecting;
    }
    return this.producer;
  }

  private line(name: string): BullLine {
    const line = this.lines.get(name);
    if (!line) throw new Error(`queue ${name} was not declared`);
    return line;
  }

  /** Runs a Redis operation, naming the queue in its failure. */
  private async redis<T>(label: string, what: () => Promise<T>): Promise<T> {
    try {
      return await what();
    } catch (err) {
      throw new Error(`Queue '${label}': Redis failed: ${(err as Error).message}`);
    }
  }
}

function deadLetterOf(job: Job<BullJobData>): DeadLetter {
  // FIFO deliveries count their attempts in the progress; BullMQ saw one.
  const made = Math.max(job.attemptsMade, typeof job.progress === 'number' ? job.progress : 0);
  return { job: job.data.job, error: job.failedReason, failedAtMs: job.finishedOn ?? Date.now(), attemptsMade: made };
}
