import type { Logger } from '../../../observability/logger';
import { EngineError, ErrorCode } from '../../../protocol/errors';
import type { Json } from '../../../protocol/messages';
import { RemoteEngine, type ServedContext } from '../../bridge/remote-engine';
import { QueueErrorCode } from '../errors';
import type { DeadLetter, Deliver, QueueAdapter, QueueCounts, QueueJob, QueueSource, QueueSpec } from './adapter';
import { InFlight } from './in-flight';

/** Distinct functions this adapter serves to the other engine at most (one registration each there). */
export const MAX_SERVED_FUNCTIONS = 10_000;
/** `counts` (the metrics scrape) waits this long for the other engine, in ms. */
const COUNTS_TIMEOUT_MS = 2000;

export interface BridgeQueueOptions {
  url: string;
  token?: string;
  nodeId: string;
  logger: Logger;
  /** Every call to the other engine (an enqueue, a publish, an inspection) ends by this, in ms. */
  timeoutMs: number;
  /** Local functions served there from the start, for named-queue jobs enqueued there. */
  serveFunctions: readonly string[];
  /** Distinct functions served for named-queue jobs at most (default MAX_SERVED_FUNCTIONS). */
  maxServedFunctions?: number;
}

interface BridgedQueue {
  spec: QueueSpec;
  source: QueueSource;
  deliver?: Deliver;
  /** The `durable:subscriber` config bound there (topic queues while consumed). */
  bound?: string;
}

/**
 * `iii-queue` whose queues live in another engine (`adapter: {name: bridge, config: {bridge_url}}`),
 * reached as an ordinary worker of it (`RemoteEngine`). That engine's queue module does the
 * storing, the retries, the backoff and the dead-lettering; this one enqueues there and serves
 * the deliveries to its own workers.
 *
 * - Named queue: an enqueue is `engine::queue::enqueue` there (same receipt id), answered only
 *   once that engine accepted it. That engine's consumer calls the job's `function_id` there, so
 *   this adapter serves that function there (from its first enqueue here, and every function of
 *   `serve_functions` from the start) and hands each call to the local consumer. The queue's
 *   policy (`max_retries`, `backoff_ms`, `concurrency`, `type`) is the other engine's
 *   `queue_configs`; this engine's are not applied (a warning says so once).
 * - Durable topic: a local `durable:subscriber` binding becomes a `durable:subscriber` binding
 *   there, with the local `queue_config`, of a function this adapter serves
 *   (`iii-bridge::queue::<node>::<topic>::<function>`); a publish is `iii::durable::publish` there.
 * - A delivery that fails here fails there: that engine retries it and dead-letters it.
 * - Inspection and dead-letter functions are answered there (`inspect`).
 */
export class BridgeQueueAdapter implements QueueAdapter {
  readonly name = 'bridge';
  private readonly remote: RemoteEngine;
  private readonly queues = new Map<string, BridgedQueue>();
  /** Functions served there for named-queue jobs. */
  private readonly served = new Set<string>();
  private readonly inFlight = new InFlight();
  private warnedPolicy = false;
  private closed = false;

  constructor(private readonly options: BridgeQueueOptions) {
    this.remote = new RemoteEngine({
      url: options.url,
      ...(options.token ? { token: options.token } : {}),
      workerName: `iii-queue@${options.nodeId}`,
      logger: options.logger,
    });
    for (const functionId of options.serveFunctions) this.serveNamed(functionId);
    this.remote.start();
  }

  async declare(spec: QueueSpec): Promise<void> {
    const source = spec.source ?? sourceOf(spec.name);
    const queue = this.queues.get(spec.name);
    if (queue) queue.spec = spec;
    else this.queues.set(spec.name, { spec, source });
    if (source.kind === 'named' && !this.warnedPolicy) {
      this.warnedPolicy = true;
      this.options.logger.warn(
        { url: this.options.url, queue: source.queue },
        "iii-queue (bridge): named queues are kept and delivered by the other engine with its queue_configs (max_retries, backoff_ms, concurrency, type); this engine's are not applied there",
      );
    }
    if (source.kind === 'topic' && queue?.deliver) this.bindTopic(spec.name);
  }

  async enqueue(name: string, job: QueueJob): Promise<number> {
    const source = this.queue(name).source;
    if (source.kind !== 'named')
      throw this.unsupported(`enqueue to ${name}`, 'topic messages are published there whole (iii::durable::publish)');
    this.serveNamed(job.functionId);
    const data: Record<string, Json> = {
      queue: source.queue,
      function_id: job.functionId,
      data: job.data,
      messageReceiptId: job.id,
    };
    if (job.traceparent !== undefined) data['traceparent'] = job.traceparent;
    if (job.baggage !== undefined) data['baggage'] = job.baggage;
    await this.remote.call('engine::queue::enqueue', data, this.options.timeoutMs);
    return 0;
  }

  async publishTopic(topic: string, data: Json): Promise<void> {
    await this.remote.call('iii::durable::publish', { topic, data }, this.options.timeoutMs);
  }

  async inspect(functionId: string, data: Json): Promise<Json> {
    return (await this.remote.call(functionId, data, this.options.timeoutMs)) ?? null;
  }

  async startConsumer(name: string, deliver: Deliver): Promise<void> {
    const queue = this.queue(name);
    queue.deliver = deliver;
    if (queue.source.kind === 'topic') this.bindTopic(name);
  }

  async stopConsumer(name: string): Promise<void> {
    const queue = this.queues.get(name);
    if (!queue) return;
    delete queue.deliver;
    // A topic's queue there outlives the binding, as here: its messages wait for the next one.
    if (queue.bound !== undefined) this.remote.unbind(servedId(this.options.nodeId, name));
    delete queue.bound;
  }

  async takeAll(name: string): Promise<QueueJob[]> {
    throw this.unsupported(`takeAll of ${name}`, 'its messages stay in the other engine');
  }

  async counts(name: string): Promise<QueueCounts> {
    const queue = this.named(name, 'counts');
    // A scrape must not wait for a link that is down.
    if (!this.remote.isConnected)
      throw new EngineError(
        ErrorCode.bridgeUnavailable,
        `iii-queue: the bridge to ${this.options.url} is not connected.`,
      );
    const stats = ((await this.remote.call(
      'engine::queue::topic_stats',
      { topic: queue },
      Math.min(COUNTS_TIMEOUT_MS, this.options.timeoutMs),
    )) ?? {}) as Record<string, Json>;
    return {
      waiting: Number(stats['depth'] ?? 0),
      delayed: 0,
      active: 0,
      deadLetters: Number(stats['dlq_depth'] ?? 0),
    };
  }

  async deadLetters(name: string, offset: number, limit: number): Promise<DeadLetter[]> {
    const queue = this.named(name, 'deadLetters');
    const page = ((await this.inspect('engine::queue::dlq_messages', { topic: queue, offset, limit })) ?? []) as Record<
      string,
      Json
    >[];
    return page.map((entry) => ({
      job: {
        id: String(entry['id']),
        functionId: '',
        data: entry['payload'] ?? null,
        sizeBytes: Number(entry['size_bytes'] ?? 0),
        enqueuedAtMs: 0,
      },
      error: String(entry['error'] ?? ''),
      failedAtMs: Number(entry['failed_at'] ?? 0) * 1000,
      attemptsMade: Number(entry['retries'] ?? 0),
    }));
  }

  async redriveAll(name: string): Promise<number> {
    const result = (await this.inspect('iii::queue::redrive', { queue: this.named(name, 'redriveAll') })) as Record<
      string,
      Json
    > | null;
    return Number(result?.['redriven'] ?? 0);
  }

  async redrive(name: string, jobId: string): Promise<boolean> {
    const result = (await this.inspect('iii::queue::redrive_message', {
      queue: this.named(name, 'redrive'),
      message_id: jobId,
    })) as Record<string, Json> | null;
    return result?.['redriven'] === 1;
  }

  async discard(name: string, jobId: string): Promise<boolean> {
    const result = (await this.inspect('iii::queue::discard_message', {
      queue: this.named(name, 'discard'),
      message_id: jobId,
    })) as Record<string, Json> | null;
    return result?.['redriven'] === 1;
  }

  async close(graceMs: number): Promise<void> {
    this.closed = true;
    for (const queue of this.queues.values()) delete queue.deliver;
    await this.inFlight.settled(graceMs);
    // Deliveries still running there fail with the link: the other engine retries them.
    await this.remote.close();
  }

  /** Serves `functionId` there for named-queue jobs: each call goes to a local named-queue consumer. */
  private serveNamed(functionId: string): void {
    if (this.served.has(functionId)) return;
    const max = this.options.maxServedFunctions ?? MAX_SERVED_FUNCTIONS;
    if (this.served.size >= max) {
      throw new EngineError(
        ErrorCode.limitExceeded,
        `iii-queue (bridge): ${max} distinct functions are served to ${this.options.url} for queue jobs already; a job for ${functionId} cannot be enqueued (enqueue for the functions already served)`,
      );
    }
    this.served.add(functionId);
    this.remote.serve(
      functionId,
      (data, context) => {
        // The call does not say which named queue it comes from; every named consumer delivers alike.
        const deliver = [...this.queues.values()].find((q) => q.source.kind === 'named' && q.deliver)?.deliver;
        return this.run(deliver, functionId, data, context, 'no named queue is consumed here');
      },
      `Queue deliveries for ${functionId}, served by iii-queue on ${this.options.nodeId}`,
    );
  }

  /** Binds (or binds again, with a changed policy) a consumed topic queue there. */
  private bindTopic(name: string): void {
    const queue = this.queue(name);
    const { source, spec } = queue;
    if (source.kind !== 'topic') return;
    const config: Json = {
      topic: source.topic,
      queue_config: {
        type: spec.ordering,
        maxRetries: spec.maxAttempts - 1,
        concurrency: spec.concurrency,
        backoffDelayMs: spec.backoffMs,
      },
    };
    const text = JSON.stringify(config);
    if (queue.bound === text) return;
    const id = servedId(this.options.nodeId, name);
    if (queue.bound === undefined) {
      const notConsumed = `${spec.label} is not consumed here now`;
      this.remote.serve(
        id,
        (data, context) => this.run(this.queues.get(name)?.deliver, source.functionId, data, context, notConsumed),
        `Deliveries of ${spec.label}, served by iii-queue on ${this.options.nodeId}`,
      );
    } else {
      // A binding's config cannot be changed in place: remove it, then bind it again (in order on one socket).
      this.remote.unbind(id);
    }
    this.remote.bind(id, 'durable:subscriber', id, config);
    queue.bound = text;
  }

  /** One delivery from the other engine: resolves to acknowledge there, throws to fail the attempt there. */
  private async run(
    deliver: Deliver | undefined,
    functionId: string,
    data: Json,
    context: ServedContext,
    notConsumed: string,
  ): Promise<undefined> {
    if (!deliver || this.closed)
      throw new EngineError(
        ErrorCode.invocationError,
        `iii-queue on ${this.options.nodeId}: ${notConsumed}; the delivery of ${functionId} fails and is retried there`,
      );
    const job: QueueJob = {
      id: '',
      functionId,
      data,
      sizeBytes: Buffer.byteLength(JSON.stringify(data)),
      enqueuedAtMs: Date.now(),
    };
    if (context.traceparent !== undefined) job.traceparent = context.traceparent;
    if (context.baggage !== undefined) job.baggage = context.baggage;
    this.inFlight.add(1);
    try {
      // The other engine keeps the attempt count; it does not send it.
      await deliver(job, 1);
      return undefined;
    } finally {
      this.inFlight.add(-1);
    }
  }

  private queue(name: string): BridgedQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`queue ${name} was not declared`);
    return queue;
  }

  /** The named queue's name there; per-function queues of a topic have no counterpart to ask about. */
  private named(name: string, what: string): string {
    const source = this.queues.get(name)?.source ?? sourceOf(name);
    if (source.kind === 'named') return source.queue;
    throw this.unsupported(
      `${what} of ${name}`,
      'the other engine answers per topic, not per subscribed function (ask engine::queue::* here, which it answers)',
    );
  }

  private unsupported(what: string, why: string): EngineError {
    return new EngineError(QueueErrorCode.bridgeUnsupported, `iii-queue (bridge): ${what} is not offered: ${why}`);
  }
}

/** The function (and binding) id there of one consumed topic queue. */
function servedId(nodeId: string, queueName: string): string {
  return `iii-bridge::queue::${nodeId}::${queueName}`;
}

/** A spec without `source`: only the unambiguous prefixes can be read back. */
function sourceOf(name: string): QueueSource {
  const named = /^__fn_queue::(.*)$/s.exec(name);
  if (named) return { kind: 'named', queue: named[1] };
  const backlog = /^__topic_backlog::(.*)$/s.exec(name);
  if (backlog) return { kind: 'backlog', topic: backlog[1] };
  throw new EngineError(
    QueueErrorCode.bridgeUnsupported,
    `iii-queue (bridge): queue ${name} was declared without its source; cannot tell its topic and function apart`,
  );
}
