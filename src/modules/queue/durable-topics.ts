import { randomUUID } from 'node:crypto';
import type { TriggerProvider } from '../../engine/triggers';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import type { QueueAdapter, QueueJob } from './adapters/adapter';
import { QueueErrorCode } from './errors';
import { deliveryCall, newJob } from './jobs';
import { subscriberQueueKey, topicBacklogKey } from './names';
import type { QueueSettings } from './settings';
import { readSubscriberConfig, subscriberConfigView, type SubscriberConfig } from './subscriber-config';

interface Subscription extends SubscriberConfig {
  triggerId: string;
  functionId: string;
}

/**
 * Topics with durable fan-out (`durable:subscriber`, `iii::durable::publish`). Each distinct
 * function subscribed to a topic has its own queue and gets a copy of every message; several
 * bindings of one function share that queue (competing consumers). The most recent binding of a
 * function sets its queue's policy and condition. A function's queue outlives its bindings: its
 * messages wait for the function to subscribe again.
 *
 * Messages published while a topic has no subscriber are kept in a backlog (at most
 * `max_topic_backlog`, the oldest dropped with a warning) and handed to the first subscriber.
 *
 * A topic, once known, is kept (its queues and backlog outlive their bindings), so the number of
 * topics is bounded by `max_topics`: publishing to random names would otherwise grow a backlog
 * per name. A publish or subscription that would add a topic beyond it is refused.
 */
export class DurableTopics implements TriggerProvider {
  /** topic -> function id -> binding id -> subscription (in registration order). */
  private readonly topics = new Map<string, Map<string, Map<string, Subscription>>>();
  /** Every function that ever had a queue on a topic (queues survive their bindings). */
  private readonly queuesByTopic = new Map<string, Set<string>>();
  private readonly byTrigger = new Map<string, Subscription>();
  private readonly backlogs = new Set<string>();
  /** Every topic anyone has subscribed to or kept a backlog for: what `max_topics` counts. */
  private readonly known = new Set<string>();

  constructor(
    private readonly host: ModuleHost,
    private readonly adapter: QueueAdapter,
    private readonly settings: QueueSettings,
  ) {}

  async registerTrigger(trigger: TriggerEntry): Promise<void> {
    const config = readSubscriberConfig(trigger.config, this.settings.subscriberDefaults);
    this.admitTopic(config.topic, 'subscribe to');
    const sub: Subscription = { ...config, triggerId: trigger.id, functionId: trigger.function_id };
    const functions = this.topics.get(sub.topic) ?? new Map<string, Map<string, Subscription>>();
    this.topics.set(sub.topic, functions);
    const firstOnTopic = functions.size === 0;
    const bindings = functions.get(sub.functionId) ?? new Map<string, Subscription>();
    functions.set(sub.functionId, bindings);
    bindings.set(sub.triggerId, sub);
    this.byTrigger.set(sub.triggerId, sub);
    const queues = this.queuesByTopic.get(sub.topic) ?? new Set<string>();
    this.queuesByTopic.set(sub.topic, queues);
    queues.add(sub.functionId);

    const key = subscriberQueueKey(sub.topic, sub.functionId);
    await this.declare(sub);
    if (bindings.size === 1)
      await this.adapter.startConsumer(key, (job) => this.deliver(sub.topic, sub.functionId, job));
    if (firstOnTopic && this.backlogs.has(sub.topic)) await this.handOverBacklog(sub.topic, sub.functionId);
  }

  async unregisterTrigger(trigger: TriggerEntry): Promise<void> {
    const sub = this.byTrigger.get(trigger.id);
    if (!sub) return;
    this.byTrigger.delete(trigger.id);
    const functions = this.topics.get(sub.topic)!;
    const bindings = functions.get(sub.functionId)!;
    bindings.delete(trigger.id);
    if (bindings.size > 0) {
      await this.declare(latest(bindings)!);
      return;
    }
    functions.delete(sub.functionId);
    if (functions.size === 0) this.topics.delete(sub.topic);
    await this.adapter.stopConsumer(subscriberQueueKey(sub.topic, sub.functionId));
  }

  /** `iii::durable::publish {topic, data}`: one copy per subscribed function, or the backlog. */
  async publish(input: Input): Promise<Json> {
    const topic = input.optString('topic') ?? '';
    if (topic === '')
      throw new EngineError(QueueErrorCode.topicNotSet, 'iii::durable::publish needs a non-empty `topic`');
    // Checked and measured once; each subscribed function gets a copy with its own id.
    const message = newJob(
      { id: randomUUID(), functionId: '', data: input.raw('data') ?? null },
      this.settings.limits.maxMessageBytes,
    );
    if (this.adapter.publishTopic) {
      // The topic lives in another engine, which fans out (and keeps a backlog) by its own rules.
      await this.adapter.publishTopic(topic, message.data);
      return null;
    }
    const functions = [...(this.topics.get(topic)?.keys() ?? [])];
    if (functions.length === 0) {
      await this.keepInBacklog(topic, message);
      return null;
    }
    const refused: string[] = [];
    for (const functionId of functions) {
      try {
        await this.adapter.enqueue(subscriberQueueKey(topic, functionId), { ...message, id: randomUUID(), functionId });
      } catch (err) {
        const cause = EngineError.from(err);
        if (cause.code !== QueueErrorCode.queueFull) throw err;
        refused.push(cause.message);
      }
    }
    if (refused.length > 0) {
      const delivered = functions.length - refused.length;
      throw new EngineError(
        QueueErrorCode.queueFull,
        `Topic '${topic}': ${refused.join('; ')} (${delivered} other subscriber(s) got the message)`,
      );
    }
    return null;
  }

  /** A topic anyone has subscribed to or published on. */
  knows(topic: string): boolean {
    return this.known.has(topic);
  }

  topicNames(): string[] {
    return [...this.known];
  }

  /** The adapter queues holding a topic's messages: the backlog, then one per function. */
  queuesOf(topic: string): string[] {
    const queues = [...(this.queuesByTopic.get(topic) ?? [])].map((fn) => subscriberQueueKey(topic, fn));
    return this.backlogs.has(topic) ? [topicBacklogKey(topic), ...queues] : queues;
  }

  /** Live bindings on a topic. */
  subscriberCount(topic: string): number {
    let n = 0;
    for (const bindings of this.topics.get(topic)?.values() ?? []) n += bindings.size;
    return n;
  }

  /** The effective policy of each subscribed function, in `queue_config` terms. */
  configOf(topic: string): Json {
    const view: Record<string, Json> = {};
    for (const [functionId, bindings] of this.topics.get(topic) ?? [])
      view[functionId] = subscriberConfigView(latest(bindings)!.policy);
    return view;
  }

  /**
   * Counts a new `topic` as known at once (so concurrent creations cannot overshoot), or refuses
   * it (`limit_exceeded`, counted in `iii_limit_refusals_total`) when `max_topics` topics are
   * known already. True when the topic is new: a caller whose creation then fails forgets it.
   */
  private admitTopic(topic: string, action: string): boolean {
    if (this.known.has(topic)) return false;
    const max = this.settings.limits.maxTopics;
    if (this.known.size >= max) {
      this.host.metrics.limitRefusals.inc({ limit: MAX_TOPICS_KEY });
      throw new EngineError(
        ErrorCode.limitExceeded,
        `Cannot ${action} topic '${topic}': this node already holds ${max} durable topics (${MAX_TOPICS_KEY} = ${max}); ` +
          'use an existing topic or raise adapter.config.max_topics',
      );
    }
    this.known.add(topic);
    return true;
  }

  private declare(sub: Subscription): Promise<void> {
    const limits = this.settings.limits;
    return this.adapter.declare({
      name: subscriberQueueKey(sub.topic, sub.functionId),
      source: { kind: 'topic', topic: sub.topic, functionId: sub.functionId },
      label: `topic ${sub.topic} -> ${sub.functionId}`,
      ...sub.policy,
      maxDepth: limits.maxDepth,
      maxBytes: limits.maxQueueBytes,
      overflow: 'reject',
      maxDeadLetters: limits.maxDeadLetters,
    });
  }

  /**
   * One delivery: the function's latest binding decides the condition. A condition of exactly
   * `false` acknowledges the message unseen; a condition that fails is a failed attempt.
   */
  private async deliver(topic: string, functionId: string, job: QueueJob): Promise<void> {
    const bindings = this.topics.get(topic)?.get(functionId);
    const condition = bindings && latest(bindings)?.conditionFunctionId;
    if (!(await conditionPasses(this.host, condition, job.data))) return;
    await this.host.invoke(deliveryCall(job));
  }

  private async keepInBacklog(topic: string, job: QueueJob): Promise<void> {
    const limit = this.settings.limits.maxTopicBacklog;
    if (limit === 0) {
      this.host.logger.warn(
        { topic },
        'durable publish to a topic without subscribers dropped (max_topic_backlog is 0)',
      );
      return;
    }
    const key = topicBacklogKey(topic);
    if (!this.backlogs.has(topic)) {
      const added = this.admitTopic(topic, 'publish to');
      try {
        await this.declareBacklog(topic, limit);
      } catch (err) {
        if (added) this.known.delete(topic); // nothing was made: the topic does not count
        throw err;
      }
      this.backlogs.add(topic);
    }
    const dropped = await this.adapter.enqueue(key, job);
    if (dropped > 0)
      this.host.logger.warn(
        { topic, dropped, limit },
        'topic without subscribers is at max_topic_backlog: oldest messages dropped',
      );
  }

  private declareBacklog(topic: string, maxDepth: number): Promise<void> {
    return this.adapter.declare({
      name: topicBacklogKey(topic),
      source: { kind: 'backlog', topic },
      label: `backlog of topic ${topic}`,
      // Never consumed: handed over whole to the first subscriber.
      ordering: 'standard',
      concurrency: 1,
      maxAttempts: 1,
      backoffMs: 0,
      maxDepth,
      maxBytes: this.settings.limits.maxQueueBytes,
      overflow: 'drop_oldest',
      maxDeadLetters: 0,
    });
  }

  /** Moves a topic's backlog, oldest first, to the queue of its first subscriber. */
  private async handOverBacklog(topic: string, functionId: string): Promise<void> {
    const queue = subscriberQueueKey(topic, functionId);
    for (const job of await this.adapter.takeAll(topicBacklogKey(topic))) {
      try {
        await this.adapter.enqueue(queue, { ...job, functionId });
      } catch (err) {
        this.host.logger.warn(
          { err, topic, queue, jobId: job.id },
          'backlog message could not be handed to the first subscriber; dropped',
        );
      }
    }
  }
}

/** The limit's key, as refusals and `iii_limit_refusals_total` name it. */
const MAX_TOPICS_KEY = 'iii-queue.max_topics';

function latest(bindings: Map<string, Subscription>): Subscription | undefined {
  let last: Subscription | undefined;
  for (const sub of bindings.values()) last = sub;
  return last;
}
