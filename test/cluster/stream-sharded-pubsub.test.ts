import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as connectClient, type Socket } from 'socket.io-client';
import { parseClusterNodes, type RedisEndpoint } from '../../src/cluster/redis-options';
import { createStreamBackend, type StreamBackend } from '../../src/modules/stream/adapters';
import { streamEvent, type StreamEvent } from '../../src/modules/stream/events';
import { SocketIoRedisLink } from '../../src/modules/stream/socketio-redis-adapter';
import { silentLogger } from '../../src/observability/logger';
import { sleep, waitFor } from '../support/engine';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';

/**
 * The stream module's cross-node parts on a Redis Cluster use sharded pub/sub (issue 14 #2):
 * the stream event bus SPUBLISHes and SSUBSCRIBEs its channel, and Socket.IO runs
 * @socket.io/redis-adapter's sharded adapter. Proven on a private three-primary cluster by what
 * the shards report (PUBSUB SHARDNUMSUB on the shard owning the channel, nothing in PUBSUB
 * NUMSUB/NUMPAT anywhere) and by messages crossing from one instance to another.
 */

/** How long a message sent on the wrong kind of channel would take at most to show up, in ms. */
const STRAY_WINDOW_MS = 300;

let redisCluster: TestRedisCluster;
/** One connection per primary, straight to it (not a Cluster client): what each shard itself reports. */
let shards: Array<{ port: number; redis: Redis }> = [];
const closers: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  shards = await Promise.all(
    redisCluster.ports.map(async (port) => {
      const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
      await redis.connect();
      return { port, redis };
    }),
  );
}, 60_000);
afterAll(async () => {
  for (const { redis } of shards) redis.disconnect();
  await redisCluster?.stop();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A `redis` stream backend on the cluster, as node `nodeId` of an engine cluster with this key prefix. */
async function backend(nodeId: string, keyPrefix: string): Promise<StreamBackend> {
  const cluster = { redisClusterNodes: parseClusterNodes(redisCluster.nodes), keyPrefix };
  const opened = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId, cluster });
  closers.push(async () => {
    await opened.bus.close();
    await opened.storage.close();
  });
  return opened;
}

/** The port of the primary serving the slot of `channel`, from the cluster's own slot map. */
async function ownerPort(channel: string): Promise<number> {
  const admin = shards[0]!.redis;
  const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', channel));
  const ranges = (await admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no primary serves slot ${slot} of ${channel}: ${JSON.stringify(ranges)}`);
  return Number(range[2][1]);
}

/** What every primary says about a channel: shard subscribers, plain subscribers and patterns. */
async function pubsubCounts(
  channel: string,
): Promise<Array<{ port: number; shard: number; plain: number; patterns: number }>> {
  return Promise.all(
    shards.map(async ({ port, redis }) => {
      const shard = (await redis.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      const plain = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      const patterns = Number(await redis.call('PUBSUB', 'NUMPAT'));
      return { port, shard: Number(shard[1]), plain: Number(plain[1]), patterns };
    }),
  );
}

describe('stream event bus on a Redis Cluster', () => {
  test('an event published by one instance reaches a subscriber of another', async () => {
    const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
    const a = await backend('a', keyPrefix);
    const b = await backend('b', keyPrefix);
    const got: StreamEvent[] = [];
    b.bus.subscribe((e) => got.push(e));
    const event = streamEvent('s', 'g', 'i', { type: 'create', data: { from: 'a' } });
    await a.bus.publish(event);
    await waitFor(() => got.length === 1, "a's event at b");
    await sleep(STRAY_WINDOW_MS); // a duplicate would arrive within this
    expect(got).toEqual([event]);
  });

  test('the channel is a shard channel: subscribed on the owning shard only, not in plain pub/sub', async () => {
    const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
    const channel = `${keyPrefix}stream::events`;
    await backend('a', keyPrefix);
    await backend('b', keyPrefix);
    const owner = await ownerPort(channel);
    const counts = await pubsubCounts(channel);
    expect(counts).toEqual(shards.map(({ port }) => ({ port, shard: port === owner ? 2 : 0, plain: 0, patterns: 0 })));
  });

  test('events are SPUBLISHed: a shard subscriber gets them, a plain SUBSCRIBE on every node does not', async () => {
    const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
    const channel = `${keyPrefix}stream::events`;
    const a = await backend('a', keyPrefix);
    const ownerRedis = new Redis({ host: '127.0.0.1', port: await ownerPort(channel), lazyConnect: true });
    const plain = shards.map(({ port }) => new Redis({ host: '127.0.0.1', port, lazyConnect: true }));
    closers.push(() => [ownerRedis, ...plain].forEach((r) => r.disconnect()));
    const sharded: string[] = [];
    const stray: string[] = [];
    ownerRedis.on('smessage', (_channel: string, text: string) => sharded.push(text));
    await ownerRedis.connect();
    await ownerRedis.ssubscribe(channel);
    for (const redis of plain) {
      redis.on('message', (_channel: string, text: string) => stray.push(text));
      await redis.connect();
      await redis.subscribe(channel);
    }
    const event = streamEvent('s', 'g', null, { type: 'event', event: { type: 'ping', data: [] } });
    await a.bus.publish(event);
    await waitFor(() => sharded.length === 1, 'the event on the shard channel');
    await sleep(STRAY_WINDOW_MS);
    expect((JSON.parse(sharded[0]!) as { event: StreamEvent }).event).toEqual(event);
    expect(stray).toEqual([]);
  });
});

describe('Socket.IO on a Redis Cluster', () => {
  const endpoint = (): RedisEndpoint => ({ cluster: { nodes: parseClusterNodes(redisCluster.nodes) } });

  /** A Socket.IO server on a free port with our Redis link's adapter. */
  async function server(keyPrefix: string, nodeId: string): Promise<{ io: Server; port: number }> {
    const link = await SocketIoRedisLink.connect(endpoint(), keyPrefix, nodeId, silentLogger);
    const httpServer = http.createServer();
    const io = new Server(httpServer, { adapter: link.adapter, serveClient: false });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      io.engine.close();
      await io.sockets.adapter.close();
      await link.close();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    });
    return { io, port: (httpServer.address() as AddressInfo).port };
  }

  async function client(port: number): Promise<Socket> {
    const socket = connectClient(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    closers.push(() => void socket.disconnect());
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  }

  test("a room broadcast on one server reaches the other server's client, over shard channels only", async () => {
    const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
    const a = await server(keyPrefix, 'a');
    const b = await server(keyPrefix, 'b');
    b.io.on('connection', (socket) => void socket.join('room-1'));
    const socket = await client(b.port);
    const got: unknown[] = [];
    socket.on('hello', (payload: unknown) => got.push(payload));
    await waitFor(() => b.io.sockets.adapter.rooms.get('room-1')?.size === 1, 'the client in room-1');

    a.io.to('room-1').emit('hello', { from: 'a' });
    await waitFor(() => got.length === 1, "a's broadcast at b's client");
    await sleep(STRAY_WINDOW_MS);
    expect(got).toEqual([{ from: 'a' }]);

    // Both servers SSUBSCRIBE the namespace channel on the shard owning it; nothing classic.
    const channel = `${keyPrefix}socket.io#/#`;
    const owner = await ownerPort(channel);
    expect(await pubsubCounts(channel)).toEqual(
      shards.map(({ port }) => ({ port, shard: port === owner ? 2 : 0, plain: 0, patterns: 0 })),
    );
  });

  test("fetchSockets on one server counts the servers by shard subscribers and lists the other's client", async () => {
    const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
    const a = await server(keyPrefix, 'a');
    const b = await server(keyPrefix, 'b');
    const socket = await client(b.port);
    const started = Date.now();
    const sockets = await a.io.fetchSockets();
    // A wrong server count would either miss b's answer or wait for the request timeout (5 s).
    expect(Date.now() - started).toBeLessThan(2000);
    expect(sockets.map((s) => s.id)).toEqual([socket.id]);
  });
});
