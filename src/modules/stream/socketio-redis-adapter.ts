import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import { closeRedis, connectRedis } from '../../cluster/redis-target';
import { openRedis, redisConnection } from '../../cluster/redis-connection';
import type { RedisEndpoint } from '../../cluster/redis-options';
import type { Logger } from '../../observability/logger';

export type SocketIoAdapterFactory = ReturnType<typeof createAdapter>;

/**
 * The Redis link of the stream port's Socket.IO server in cluster mode: @socket.io/redis-adapter
 * on a publisher and a subscriber connection of its own, on channels `<keyPrefix>socket.io#...`.
 * With it, non-local Socket.IO operations (`io.to(room).emit`, `fetchSockets`,
 * `disconnectSockets`) span every node. Stream events do not travel here (see socketio-server.ts).
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
    // A subscriber connection re-subscribes by itself after a reconnect; it must queue that.
    const subscriber = redisConnection(redis, `iii:${nodeId}:stream-socketio-sub`, logger, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    try {
      await openRedis(subscriber, 'iii-stream: Socket.IO');
    } catch (err) {
      subscriber.disconnect();
      await closeRedis(publisher);
      throw err;
    }
    const adapter = createAdapter(guarded(publisher, logger), guarded(subscriber, logger), {
      key: `${keyPrefix}socket.io`,
    });
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
interface AdapterRedisClient {
  publish(channel: string, message: string | Buffer): void;
  psubscribe(pattern: string): void;
  punsubscribe(pattern: string): void;
  subscribe(channels: string[]): void;
  unsubscribe(channels: string[]): void;
  on(event: string, listener: Listener): void;
  off(event: string, listener: Listener): void;
  /** Used for `PUBSUB NUMSUB` (how many nodes answer a request); ioredis 6 no longer has it. */
  send_command(command: string, args: string[], callback: (err: Error | null, reply?: unknown) => void): void;
}

/**
 * The adapter never awaits its Redis commands: a command failing while Redis is away would be an
 * unhandled rejection (fatal by default). Each failure is logged here instead; the adapter's
 * requests have their own timeouts and pub/sub is at-most-once anyway.
 */
function guarded(redis: Redis, logger: Logger): AdapterRedisClient {
  const log = (command: string) => (err: unknown) =>
    logger.debug({ err, command }, 'Socket.IO adapter Redis command failed');
  return {
    publish: (channel, message) => void redis.publish(channel, message).catch(log('publish')),
    psubscribe: (pattern) => void redis.psubscribe(pattern).catch(log('psubscribe')),
    punsubscribe: (pattern) => void redis.punsubscribe(pattern).catch(log('punsubscribe')),
    subscribe: (channels) => void redis.subscribe(...channels).catch(log('subscribe')),
    unsubscribe: (channels) => void redis.unsubscribe(...channels).catch(log('unsubscribe')),
    // The adapter's own `error` listener reads `this.listenerCount`: `this` must be the client.
    on: (event, listener) => void redis.on(event, listener),
    off: (event, listener) => void redis.off(event, listener),
    send_command: (command, args, callback) =>
      void redis.call(command, args).then(
        (reply) => callback(null, reply),
        (err: Error) => callback(err),
      ),
  };
}
