import type { IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import { createEngine } from '../../src/create-engine';
import type { StreamModule } from '../../src/modules/stream';
import { silentLogger } from '../../src/observability/logger';
import { functionRegistered, sleep, startCluster, testConfig, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import { call, type Any } from '../support/calls';

/**
 * `iii-state` and `iii-stream` on a cluster of in-process nodes sharing one Redis (their default
 * adapter in cluster mode): data written anywhere is read everywhere, triggers fire once per
 * change wherever their worker is, stream clients on every node see every change once.
 */

/** How long a duplicate delivery would take at most to show up, in ms. */
const DUPLICATE_WINDOW_MS = 300;

let redis: TestRedis;
const engines: TestEngine[] = [];
const sockets: WebSocket[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

/** Nodes of one cluster: same Redis, a key prefix of its own per test. */
async function cluster(count: number, url = redis.url): Promise<TestEngine[]> {
  const { nodes } = await startCluster(count, url);
  engines.push(...nodes);
  return nodes;
}

/** Registers `functionId` on `worker` recording its payloads, bound to a trigger seen live on `seenOn`. */
async function recordTrigger(
  owner: TestEngine,
  worker: IIIClient,
  seenOn: TestEngine,
  functionId: string,
  type: string,
  config: unknown,
): Promise<Any[]> {
  const seen: Any[] = [];
  worker.registerFunction(functionId, async (payload: Any) => void seen.push(payload));
  await functionRegistered(seenOn.engine, functionId);
  worker.registerTrigger({ type, function_id: functionId, config });
  await waitFor(
    () =>
      [owner, seenOn].every((t) =>
        t.engine.registry.triggersOfType(type, 'live').some((b) => b.function_id === functionId),
      ),
    `a live ${type} binding for ${functionId}`,
  );
  return seen;
}

/** A stream client joined to a group, recording the frames after its sync. */
async function streamClient(node: TestEngine, streamName: string, groupId: string): Promise<Any[]> {
  const port = node.engine.module<StreamModule>('iii-stream')!.port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  sockets.push(ws);
  const frames: Any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'join', data: { subscriptionId: 'sub', streamName, groupId } }));
  await waitFor(() => frames.some((f) => f.event?.type === 'sync'), `the sync of ${streamName}/${groupId}`);
  return frames;
}

describe('state on a cluster', () => {
  test('a value set through one node is read through another', async () => {
    const [a, b] = await cluster(2);
    await call(a.worker('writer'), 'state::set', { scope: 'users', key: 'u1', value: { name: 'Ada', tags: [] } });
    expect(await call(b.worker('reader'), 'state::get', { scope: 'users', key: 'u1' })).toEqual({
      name: 'Ada',
      tags: [],
    });
    expect(await call(b.worker('lister'), 'state::list_groups', {})).toEqual({ groups: ['users'] });
  });

  test('a state trigger registered on a third node fires exactly once per write', async () => {
    const [a, , c] = await cluster(3);
    const seen = await recordTrigger(c, c.worker('watcher'), a, 'watch::users', 'state', { scope: 'users' });
    const writer = a.worker('writer');
    await call(writer, 'state::set', { scope: 'users', key: 'u1', value: 1 });
    await call(writer, 'state::update', { scope: 'users', key: 'u1', ops: [{ type: 'increment', path: '', by: 1 }] });
    await waitFor(() => seen.length >= 2, 'both state events');
    await sleep(DUPLICATE_WINDOW_MS);
    expect(seen.map((e) => [e.event_type, e.old_value, e.new_value])).toEqual([
      ['state:created', null, 1],
      ['state:updated', 1, 2],
    ]);
  });

  test('30 concurrent increments spread over three nodes give the exact total', async () => {
    const nodes = await cluster(3);
    const workers = nodes.map((node, i) => node.worker(`incrementer-${i}`));
    const ops = [{ type: 'increment', path: 'hits', by: 1 }];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(workers[i % 3], 'state::update', { scope: 'counters', key: 'page', ops }),
      ),
    );
    expect(await call(workers[0], 'state::get', { scope: 'counters', key: 'page' })).toEqual({ hits: 30 });
  });
});

describe('stream on a cluster', () => {
  test('a change made through one node reaches clients on every node exactly once', async () => {
    const [a, b] = await cluster(2);
    const onA = await streamClient(a, 'chat', 'room');
    const onB = await streamClient(b, 'chat', 'room');
    await call(a.worker('writer'), 'stream::set', {
      stream_name: 'chat',
      group_id: 'room',
      item_id: 'm1',
      data: { text: 'hi' },
    });
    const changes = (frames: Any[]) => frames.filter((f) => f.event?.type === 'create');
    await waitFor(() => changes(onA).length >= 1 && changes(onB).length >= 1, 'the create on both nodes');
    await sleep(DUPLICATE_WINDOW_MS);
    for (const frames of [onA, onB]) {
      expect(changes(frames)).toHaveLength(1);
      expect(changes(frames)[0]).toMatchObject({
        streamName: 'chat',
        groupId: 'room',
        id: 'm1',
        event: { type: 'create', data: { text: 'hi' } },
      });
    }
  });

  test('a stream trigger fires once per change, whichever node made it', async () => {
    const [a, b, c] = await cluster(3);
    const seen = await recordTrigger(c, c.worker('watcher'), a, 'watch::chat', 'stream', { stream_name: 'chat' });
    await waitFor(() => b.engine.registry.triggersOfType('stream', 'live').length === 1, 'the binding on node 2');
    await call(a.worker('writer-a'), 'stream::set', { stream_name: 'chat', group_id: 'room', item_id: 'm1', data: 1 });
    await call(b.worker('writer-b'), 'stream::update', {
      stream_name: 'chat',
      group_id: 'room',
      item_id: 'm1',
      ops: [{ type: 'increment', path: '', by: 1 }],
    });
    await waitFor(() => seen.length >= 2, 'both stream events');
    await sleep(DUPLICATE_WINDOW_MS);
    expect(seen.map((e) => [e.event.type, e.event.data])).toEqual([
      ['create', 1],
      ['update', 2],
    ]);
  });
});

describe('Redis outages and configuration', () => {
  test('with Redis down state::set fails at once with a clear error, and works again once Redis is back', async () => {
    const own = await startRedis();
    try {
      const [node] = await cluster(1, own.url);
      const worker = node.worker('writer');
      await call(worker, 'state::set', { scope: 's', key: 'k', value: 1 });
      await own.stop();
      const started = Date.now();
      const err = await call(worker, 'state::set', { scope: 's', key: 'k', value: 2 }).then(
        () => undefined,
        (e: Any) => e,
      );
      expect(err?.code).toBe('SET_ERROR');
      expect(err?.message).toMatch(/Redis at 127\.0\.0\.1:\d+ is unreachable/);
      expect(Date.now() - started).toBeLessThan(5000);
      await own.restart();
      await waitFor(
        () =>
          call(worker, 'state::set', { scope: 's', key: 'k', value: 3 }).then(
            () => true,
            () => false,
          ),
        'state::set to work again',
        15_000,
      );
      expect(await call(worker, 'state::get', { scope: 's', key: 'k' })).toBe(3);
    } finally {
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await own.stop();
    }
  });

  test.each([
    ['state', 'iii-state'],
    ['stream', 'iii-stream'],
  ] as const)(
    'the %s redis adapter without any Redis URL makes start() fail, saying where to put one',
    async (id, module) => {
      const base = testConfig();
      const block = base.modules[id];
      const modules = { ...base.modules, [id]: { ...block, config: { ...block.config, adapter: { name: 'redis' } } } };
      const engine = createEngine(testConfig({ modules }), { logger: silentLogger });
      await expect(engine.start()).rejects.toThrow(
        `${module}: adapter redis needs cluster.redis_url / III_REDIS_URL or adapter.config.redis_url`,
      );
      await engine.stop();
    },
  );
});
