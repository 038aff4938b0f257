import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger';
import type { Bus, BusHandler } from './bus';
import { decodeSplitBusMessage, encodeBusMessage } from './bus-codec';
import type { BusMessage, Envelope } from './messages';
import { openRedis, redisConnection } from './redis-connection';
import type { RedisEndpoint } from './redis-options';

/**
 * How long a message to one node may wait for the way to it, in ms: for this node's publishing
 * connection to be ready again, or for the other node to be subscribed again (PUBLISH reached
 * nobody). Both happen for a second or two after a Sentinel failover or a Redis restart, while
 * the connections find the new primary; a call then waits that long instead of being lost (and
 * running into its deadline) or failing at once. Longer, it fails with a clear error.
 */
const SEND_WAIT_MS = 1500;
/** Pause between two PUBLISHes of a message that reached nobody, in ms. */
const SEND_RETRY_MS = 50;

/**
 * The bus over Redis pub/sub: each node subscribes to its inbox channel and to the broadcast
 * channel. One PUBLISH per message; a cross-node call costs one PUBLISH there and one back.
 *
 * On a Redis Cluster the inboxes use sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7): a message
 * to one node touches only the shard owning its inbox's slot, where a PUBLISH would be copied to
 * every shard of the cluster. The broadcast channel is for every node, so it stays a PUBLISH.
 */
export class RedisBus implements Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private handler: BusHandler = () => undefined;
  /** A PUBLISH was written this event-loop turn: the next ones are corked until the turn ends. */
  private publishedThisTurn = false;
  private corkedStream: Redis['stream'] | undefined;
  /** Redis Cluster: the inboxes are sharded channels. */
  private readonly sharded: boolean;

  constructor(
    redis: RedisEndpoint,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly logger: Logger,
    /** Whether node `nodeId` reads split frames (bus-codec.ts); plain JSON goes to the others. */
    private readonly readsSplit: (nodeId: string) => boolean = () => false,
  ) {
    this.sharded = redis.cluster !== undefined;
    this.pub = redisConnection(redis, `iii:${nodeId}:bus-pub`, logger);
    // A subscriber connection re-subscribes by itself after a reconnect; it must queue that.
    this.sub = redisConnection(
      redis,
      `iii:${nodeId}:bus-sub`,
      logger,
      { enableOfflineQueue: true, maxRetriesPerRequest: null },
      { shardedSubscribers: true },
    );
  }

  inbox(nodeId: string): string {
    return `${this.prefix}inbox:${nodeId}`;
  }

  get broadcastChannel(): string {
    return `${this.prefix}broadcast`;
  }

  async start(handler: BusHandler): Promise<void> {
    this.handler = handler;
    const receive = (_channel: Buffer, payload: Buffer) => this.receive(payload);
    this.sub.on('messageBuffer', receive);
    await Promise.all([openRedis(this.pub, 'cluster bus'), openRedis(this.sub, 'cluster bus')]);
    if (this.sharded) {
      this.sub.on('smessageBuffer', receive);
      await Promise.all([this.sub.ssubscribe(this.inbox(this.nodeId)), this.sub.subscribe(this.broadcastChannel)]);
    } else await this.sub.subscribe(this.inbox(this.nodeId), this.broadcastChannel);
  }

  /**
   * Publishes to `nodeId`'s inbox. A message is published again only when it surely reached
   * no one (PUBLISH counted 0 subscribers, or the connection was not ready and nothing was
   * written), so a call is never delivered twice; see SEND_WAIT_MS.
   */
  async send(nodeId: string, message: BusMessage): Promise<void> {
    const until = Date.now() + SEND_WAIT_MS;
    for (;;) {
      if (!(await ready(this.pub, until))) {
        throw new Error(`the Redis connection is ${this.pub.status} (reconnecting, e.g. during a failover)`);
      }
      if ((await this.publish(this.inbox(nodeId), message, this.readsSplit(nodeId), this.sharded)) > 0) return;
      if (Date.now() >= until) {
        throw new Error(
          `node ${nodeId} is not subscribed to its Redis inbox (gone, or still reconnecting after a Redis failover or restart)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, SEND_RETRY_MS));
    }
  }

  async broadcast(message: BusMessage): Promise<void> {
    await this.publish(this.broadcastChannel, message, false, false);
  }

  async stop(): Promise<void> {
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }

  /** Resolves with the number of subscribers that got it. */
  /** `sharded`: SPUBLISH (a node's inbox on a Redis Cluster), else PUBLISH. */
  private async publish(channel: string, message: BusMessage, split: boolean, sharded: boolean): Promise<number> {
    const frame = encodeBusMessage(message, this.nodeId, split);
    this.corkTurn();
    if (sharded) return this.pub.spublish(channel, frame) as Promise<number>;
    return this.pub.publish(channel, frame);
  }

  /**
   * The first PUBLISH of an event-loop turn is written at once (one call at a time waits for
   * nothing); the ones after it are corked and leave together when the turn ends. At K=64 the
   * socket write per PUBLISH was the largest cost of a node on the call path.
   */
  private corkTurn(): void {
    if (!this.publishedThisTurn) {
      this.publishedThisTurn = true;
      setImmediate(this.endTurn);
      return;
    }
    const stream = this.pub.stream;
    if (this.corkedStream !== undefined || this.pub.status !== 'ready' || stream === undefined) return;
    this.corkedStream = stream;
    stream.cork();
  }

  private readonly endTurn = (): void => {
    this.publishedThisTurn = false;
    this.corkedStream?.uncork();
    this.corkedStream = undefined;
  };

  private receive(payload: Buffer): void {
    let envelope: Envelope;
    try {
      const split = decodeSplitBusMessage(payload);
      envelope = split
        ? { from: split.from ?? '', message: split.message }
        : (JSON.parse(payload.toString('utf8')) as Envelope);
    } catch (err) {
      this.logger.warn({ err }, 'undecodable bus message dropped');
      return;
    }
    if (envelope.from === this.nodeId) return;
    this.handler(envelope.message, envelope.from);
  }
}

/**
 * Whether `redis` is ready, or becomes ready before `until` (epoch ms). A connection being
 * closed (ioredis's failover detector drops it when the sentinels announce a new primary) is
 * still `ready` until its socket closes, but takes no command: that counts as not ready.
 */
async function ready(redis: Redis, until: number): Promise<boolean> {
  if (redis.status === 'ready' && redis.stream?.writable !== false) return true;
  const wait = until - Date.now();
  if (wait <= 0) return false;
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(redis.status === 'ready' && redis.stream?.writable !== false), wait);
    redis.on('ready', onReady);
  });
}
