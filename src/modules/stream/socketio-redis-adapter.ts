import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Cluster, Redis } from 'ioredis';
import { closeRedis, connectRedis } from '../../cluster/redis-target';
import { isRedisCluster, openRedis, redisConnection } from '../../cluster/redis-connection';
import type { RedisEndpoint } from '../../cluster/redis-options';
import type { Logger } from '../../observability/logger';

export type SocketIoAdapterFactory = ReturnType<typeof createAdapter> | ReturnType<typeof createShardedAdapter>;

/**
 * The Redis link of the stream port's Socket.IO server in cluster mode: @socket.io/redis-adapter
 * on a publisher and a subscriber connection of its own, on channels `<keyPrefix>socket.io#...`.
 * With it, non-local Socket.IO operations (`io.to(room).emit`, `fetchSockets`,
 * `disconnectSockets`) span every node. Stream events do not travel here (see socketio-server.ts).
 *
 * On a Redis Cluster it is the adapter's sharded mode (`createShardedAdapter`, SPUBLISH and
 * SSUBSCRIBE, Redis 7): a message goes to the shard owning its channel only, not over the cluster
 * bus to every node. Its subscription mode is `static` (two channels per namespace, `<keyPrefix>
 * socket.io#/#` and one per server): stream rooms come and go with every join and leave, and
 * `dynamic` would SSUBSCRIBE and SUNSUBSCRIBE a channel for each, for operations that are rare here.
 * A single Redis and Sentinel keep the classic adapter and its channels.
 */
export class SocketIoRedisLink {
  private constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    readonly adapter: SocketIoAdapterFactory,
  ) {}

  /** Connects both connections; Redis unreachable fails the module's start with a clear error. */
  static async connect(
    redis: RedisEndpoint,
    keyPrefix: string,
    nodeId: string,
    logger: Logger,
  ): Promise<SocketIoRedisLink> {
    const publisher = await connectRedis(redis, `iii:${nodeId}:stream-socketio`, logger);
    // A subscriber connection re-subscribes by itself after a reconnect; it must queue that. On a
    // Redis Cluster the sharded adapter needs ioredis's sharded subscribers.
    const subscriber = redisConnection(
      redis,
      `iii:${nodeId}:stream-socketio-sub`,
      logger,
      { enableOfflineQueue: true, maxRetriesPerRequest: null },
      { shardedSubscribers: true },
    );
    try {
      await openRedis(subscriber, 'iii-stream: Socket.IO');
    } catch (err) {
      subscriber.disconnect();
      await closeRedis(publisher);
      throw err;
    }
    const adapter = isRedisCluster(subscriber)
      ? createShardedAdapter(guardedSharded(publisher, logger), guardedSharded(subscriber, logger), {
          channelPrefix: `${keyPrefix}socket.io`,
          subscriptionMode: 'static',
        })
      : createAdapter(guarded(publisher, logger), guarded(subscriber, logger), { key: `${keyPrefix}socket.io` });
    return new SocketIoRedisLink(publisher, subscriber, adapter);
  }

  /** Call after the Socket.IO server has closed its adapter (which unsubscribes). */
  async close(): Promise<void> {
    // Unsubscribes still in flight are dropped (and their failure logged by the guard).
    this.subscriber.disconnect();
    await closeRedis(this.publisher);
  }
}

type Listener = (...args: unknown[]) => void;

/** The calls @socket.io/redis-adapter 8.3 makes on an ioredis-style client (its non-node-redis path). */
interface AdapterRedisClient extends ClientEvents {
  publish(channel: string, message: string | Buffer): void;
  psubscribe(pattern: string): void;
  punsubscribe(pattern: string): void;
  subscribe(channels: string[]): void;
  unsubscribe(channels: string[]): void;
  /** Used for `PUBSUB NUMSUB` (how many nodes answer a request); ioredis 6 no longer has it. */
  send_command(command: string, args: string[], callback: (err: Error | null, reply?: unknown) => void): void;
}

/** What both adapters do with the client's events. */
interface ClientEvents {
  on(event: string, listener: Listener): void;
  off(event: string, listener: Listener): void;
}

/** The client's events, on the connection itself: the adapter's own `error` listener reads `this.listenerCount`. */
function events(redis: Redis): ClientEvents {
  return {
    on: (event, listener) => void redis.on(event, listener),
    off: (event, listener) => void redis.off(event, listener),
  };
}

/** Logs a failed adapter command (at debug: the adapter has its own timeouts, pub/sub is at-most-once). */
function failureLog(logger: Logger): (command: string) => (err: unknown) => void {
  return (command) => (err) => logger.debug({ err, command }, 'Socket.IO adapter Redis command failed');
}

/**
 * The adapter never awaits its Redis commands: a command failing while Redis is away would be an
 * unhandled rejection (fatal by default). Each failure is logged here instead; the adapter's
 * requests have their own timeouts and pub/sub is at-most-once anyway.
 */
function guarded(redis: Redis, logger: Logger): AdapterRedisClient {
  const log = failureLog(logger);
  return {
    ...events(redis),
    publish: (channel, message) => void redis.publish(channel, message).catch(log('publish')),
    psubscribe: (pattern) => void redis.psubscribe(pattern).catch(log('psubscribe')),
    punsubscribe: (pattern) => void redis.punsubscribe(pattern).catch(log('punsubscribe')),
    subscribe: (channels) => void redis.subscribe(...channels).catch(log('subscribe')),
    unsubscribe: (channels) => void redis.unsubscribe(...channels).catch(log('unsubscribe')),
    send_command: (command, args, callback) =>
      void redis.call(command, args).then(
        (reply) => callback(null, reply),
        (err: Error) => callback(err),
      ),
  };
}

/** The calls the sharded adapter of @socket.io/redis-adapter 8.3 makes on an ioredis-style client. */
interface ShardedAdapterRedisClient extends ClientEvents {
  /** Awaited by the adapter (some broadcasts): resolves even when the command failed (logged). */
  spublish(channel: string, message: string | Buffer): Promise<void>;
  ssubscribe(channel: string): void;
  sunsubscribe(channel: string): void;
  /**
   * `PUBSUB SHARDNUMSUB <channel>` (how many servers answer a request). A shard channel's
   * subscribers are counted by the shard owning it only, so every primary is asked and the counts
   * are summed, as the adapter itself does for an ioredis Cluster it recognises.
   */
  send_command(command: string, args: string[], callback: (err: Error | null, reply?: unknown) => void): void;
}

/** As `guarded`, for the sharded adapter on a Redis Cluster connection. */
function guardedSharded(redis: Redis, logger: Logger): ShardedAdapterRedisClient {
  const log = failureLog(logger);
  const cluster = redis as unknown as Cluster;
  return {
    ...events(redis),
    spublish: (channel, message) => redis.spublish(channel, message).then(() => undefined, log('spublish')),
    ssubscribe: (channel) => void redis.ssubscribe(channel).catch(log('ssubscribe')),
    sunsubscribe: (channel) => void redis.sunsubscribe(channel).catch(log('sunsubscribe')),
    send_command: (command, args, callback) =>
      void Promise.all(cluster.nodes('master').map((node) => node.call(command, args)))
        .then((replies) => replies.reduce<number>((sum, reply) => sum + Number((reply as unknown[])[1] ?? 0), 0))
        .then(
          (count) => callback(null, [args[1], count]),
          (err: Error) => callback(err),
        ),
  };
}
