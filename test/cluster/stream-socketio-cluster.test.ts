import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import type { StreamModule } from '../../src/modules/stream';
import { sleep, startCluster, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import { call, type Any } from '../support/calls';

/**
 * Socket.IO stream subscribers on a cluster of in-process nodes sharing one Redis: every
 * subscriber gets every change exactly once, whichever node it is connected to and whichever
 * node made the change; the nodes' Socket.IO servers are linked by @socket.io/redis-adapter.
 */

/** How long a duplicate delivery would take at most to show up, in ms. */
const DUPLICATE_WINDOW_MS = 300;

let redis: TestRedis;
const engines: TestEngine[] = [];
const closers: Array<() => void> = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

/** Nodes of one cluster: same Redis, a key prefix of its own per test. */
async function cluster(count: number, url = redis.url): Promise<{ nodes: TestEngine[]; keyPrefix: string }> {
  const started = await startCluster(count, url);
  engines.push(...started.nodes);
  return started;
}

function port(node: TestEngine): number {
  return node.engine.module<StreamModule>('iii-stream')!.port;
}

/** A Socket.IO client of `node` joined to a group (or one item), recording the `stream` events after its sync. */
async function sioSubscriber(
  node: TestEngine,
  streamName: string,
  groupId: string,
  id?: string,
): Promise<{ socket: Socket; events: Any[] }> {
  const socket = io(`http://127.0.0.1:${port(node)}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  closers.push(() => socket.disconnect());
  const events: Any[] = [];
  socket.on('stream', (event: Any) => events.push(event));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  expect(await socket.emitWithAck('join', { subscriptionId: 'sub', streamName, groupId, id })).toEqual({ ok: true });
  expect(events.shift()?.event.type).toBe('sync');
  return { socket, events };
}

/** A raw WebSocket client of `node` joined to a group, recording the frames after its sync. */
async function rawSubscriber(node: TestEngine, streamName: string, groupId: string): Promise<Any[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port(node)}/`);
  closers.push(() => ws.terminate());
  const frames: Any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'join', data: { subscriptionId: 'sub', streamName, groupId } }));
  await waitFor(() => frames.some((f) => f.event?.type === 'sync'), `the raw sync of ${streamName}/${groupId}`);
  frames.splice(0);
  return frames;
}

/** The change events (not syncs) among `events`, as [type, id, data]. */
function changes(events: Any[]): Array<[string, string | null, Any]> {
  return events.filter((e) => e.event.type !== 'sync').map((e) => [e.event.type, e.id, e.event.data ?? e.event.event]);
}

describe('Socket.IO stream subscribers on a cluster', () => {
  test('a Socket.IO client on node B receives a change made through node A exactly once', async () => {
    const {
      nodes: [a, b],
    } = await cluster(2);
    const onB = await sioSubscriber(b, 'chat', 'room');
    await call(a.worker('writer'), 'stream::set', {
      stream_name: 'chat',
      group_id: 'room',
      item_id: 'm1',
      data: { text: 'hi' },
    });
    await waitFor(() => onB.events.length >= 1, 'the create on node B');
    await sleep(DUPLICATE_WINDOW_MS);
    expect(onB.events).toEqual([
      {
        type: 'stream',
        timestamp: expect.any(Number),
        streamName: 'chat',
        groupId: 'room',
        id: 'm1',
        event: { type: 'create', data: { text: 'hi' } },
      },
    ]);
  });

  test('Socket.IO and raw clients on both nodes each get every change once, whichever node made it', async () => {
    const {
      nodes: [a, b],
    } = await cluster(2);
    const sioA = await sioSubscriber(a, 'chat', 'room');
    const sioB = await sioSubscriber(b, 'chat', 'room');
    const itemOnB = await sioSubscriber(b, 'chat', 'room', 'm2');
    const rawB = await rawSubscriber(b, 'chat', 'room');
    await call(a.worker('writer-a'), 'stream::set', { stream_name: 'chat', group_id: 'room', item_id: 'm1', data: 1 });
    await call(b.worker('writer-b'), 'stream::set', { stream_name: 'chat', group_id: 'room', item_id: 'm2', data: 2 });
    await call(a.worker('sender-a'), 'stream::send', {
      stream_name: 'chat',
      group_id: 'room',
      type: 'typing',
      data: 'ann',
    });
    const expected = [
      ['create', 'm1', 1],
      ['create', 'm2', 2],
      ['event', null, { type: 'typing', data: 'ann' }],
    ];
    await waitFor(
      () => [sioA.events, sioB.events, rawB].every((events) => events.length >= 3),
      'three changes at every group subscriber',
    );
    await sleep(DUPLICATE_WINDOW_MS);
    // Exactly once each; changes made on different nodes have no order between them.
    const bySorted = (list: unknown[]) => list.map((c) => JSON.stringify(c)).sort();
    for (const events of [sioA.events, sioB.events, rawB])
      expect(bySorted(changes(events))).toEqual(bySorted(expected));
    expect(changes(itemOnB.events)).toEqual([['create', 'm2', 2]]);
  });

  test('the redis adapter links the nodes on channels under the cluster key prefix', async () => {
    const {
      nodes: [a],
      keyPrefix,
    } = await cluster(2);
    const probe = new Redis(redis.url, { lazyConnect: true });
    closers.push(() => probe.disconnect());
    await probe.connect();
    const requestChannel = `${keyPrefix}socket.io-request#/#`;
    const subscribers = async () =>
      Number(((await probe.call('PUBSUB', 'NUMSUB', requestChannel)) as [string, number])[1]);
    await waitFor(async () => (await subscribers()) === 2, 'both nodes on the request channel');
    const channels = (await probe.call('PUBSUB', 'CHANNELS', '*socket.io*')) as string[];
    expect(channels.length).toBeGreaterThan(0);
    expect(channels.filter((channel) => !channel.startsWith(keyPrefix))).toEqual([]);
    await a.close();
    engines.splice(engines.indexOf(a), 1);
    await waitFor(async () => (await subscribers()) === 1, 'the stopped node to unsubscribe');
  });

  test('with Redis down a node keeps serving its own Socket.IO subscribers; once Redis is back the nodes are linked again', async () => {
    const own = await startRedis();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const {
        nodes: [a, b],
        keyPrefix,
      } = await cluster(2, own.url);
      const onA = await sioSubscriber(a, 'chat', 'room');
      const onB = await sioSubscriber(b, 'chat', 'room');
      const writer = a.worker('writer');
      await own.stop();
      // send stores nothing: it only needs the event path, which is local for A's own clients.
      await call(writer, 'stream::send', { stream_name: 'chat', group_id: 'room', type: 'during', data: 1 });
      await waitFor(() => onA.events.length >= 1, 'the event on node A during the outage');
      await own.restart();
      // The stream bus and the adapter re-subscribe by themselves; retry until B hears A again.
      await waitFor(
        async () => {
          await call(writer, 'stream::send', { stream_name: 'chat', group_id: 'room', type: 'after', data: 2 });
          await sleep(100);
          return onB.events.some((e) => e.event.event?.type === 'after');
        },
        'node B to receive events again',
        15_000,
      );
      const probe = new Redis(own.url, { lazyConnect: true });
      closers.push(() => probe.disconnect());
      await probe.connect();
      const requestChannel = `${keyPrefix}socket.io-request#/#`;
      await waitFor(
        async () => Number(((await probe.call('PUBSUB', 'NUMSUB', requestChannel)) as [string, number])[1]) === 2,
        'both adapters to re-subscribe',
      );
      expect(onA.events[0].event).toEqual({ type: 'event', event: { type: 'during', data: 1 } });
      expect(onB.events.some((e) => e.event.event?.type === 'during')).toBe(false);
      expect(a.engine.module<StreamModule>('iii-stream')!.clientStats.clients).toBe(1);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const close of closers.splice(0)) close();
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await own.stop();
    }
  });
});
