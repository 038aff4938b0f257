import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isRedisCluster } from '../../../cluster/redis-connection';
import type { Logger } from '../../../observability/logger';
import type { StreamEvent } from '../events';
import type { StreamEventBus, StreamEventHandler } from './event-bus';
import { LocalEventBus } from './local-event-bus';

/** What travels on the channel: the event and the bus that published it. */
interface Envelope {
  origin: string;
  event: StreamEvent;
}

/**
 * Stream events for every node: each event is PUBLISHed on one channel,
 * `<prefix>stream::events`, which every node SUBSCRIBEs to once (on its own subscriber
 * connection) and hands to its own client connections.
 *
 * This node's own events go to its clients at once, in-process, and come back from the
 * channel marked with this bus's origin id, which is skipped: each client gets each event
 * once, own clients do not wait for a Redis round trip, and a `stream::send` still reaches
 * them while Redis is away. (The original publishes the bare event and delivers it through
 * the subscription only.) `stream` triggers are not this bus's business: the writing node
 * fires them, since it holds every binding of the cluster.
 *
 * On a Redis Cluster the channel is a shard channel (SPUBLISH/SSUBSCRIBE, Redis 7): an event
 * goes to the one shard owning the channel's slot and its subscribers, instead of being
 * broadcast over the cluster bus to every node. The subscriber must then be made with the
 * cluster option `shardedSubscribers` (see createRedisBackend). A single Redis and Sentinel keep
 * plain PUBLISH/SUBSCRIBE on the same channel name.
 *
 * Pub/sub is at-most-once: a node cut off from Redis misses the events of that moment; its
 * clients resynchronize by joining again.
 */
export class RedisEventBus implements StreamEventBus {
  /** Per bus, not per node id: two buses in one process (tests) still tell their echoes apart. */
  private readonly origin = randomUUID();
  private readonly local = new LocalEventBus();
  /** Cluster mode: shard channel commands and `smessage` instead of the plain ones. */
  private readonly sharded: boolean;

  /**
   * @param publisher a data connection owned by someone else (the storage's).
   * @param subscriber this bus's own connection, in subscriber mode from `start`; closed by `close`.
   */
  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    this.sharded = isRedisCluster(subscriber);
  }

  /** Connects the subscriber and subscribes; events published after this resolves are received. */
  async start(): Promise<void> {
    this.subscriber.on(this.sharded ? 'smessage' : 'message', (channel: string, text: string) => {
      if (channel === this.channel) this.receive(text);
    });
    await this.subscriber.connect();
    if (this.sharded) await this.subscriber.ssubscribe(this.channel);
    else await this.subscriber.subscribe(this.channel);
  }

  async publish(event: StreamEvent): Promise<void> {
    await this.local.publish(event);
    const envelope: Envelope = { origin: this.origin, event };
    const text = JSON.stringify(envelope);
    if (this.sharded) await this.publisher.spublish(this.channel, text);
    else await this.publisher.publish(this.channel, text);
  }

  subscribe(handler: StreamEventHandler): () => void {
    return this.local.subscribe(handler);
  }

  async close(): Promise<void> {
    await this.local.close();
    this.subscriber.disconnect();
  }

  private receive(text: string): void {
    let envelope: Partial<Envelope> | null;
    try {
      envelope = JSON.parse(text) as Partial<Envelope> | null;
    } catch (err) {
      this.logger.warn({ err, channel: this.channel }, 'undecodable stream event dropped');
      return;
    }
    if (envelope?.origin === this.origin) return;
    const event = envelope?.event;
    if (typeof event !== 'object' || event === null || event.type !== 'stream') {
      this.logger.warn({ channel: this.channel }, 'stream event without a stream message dropped');
      return;
    }
    this.local
      .publish(event)
      .catch((err: unknown) => this.logger.warn({ err }, "stream event could not be delivered to this node's clients"));
  }
}
