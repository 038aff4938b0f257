import { randomUUID } from 'node:crypto';
import { createStreamBackend, type StreamBackend } from '../../src/modules/stream/adapters';
import { streamEvent, type StreamEvent } from '../../src/modules/stream/events';
import { silentLogger } from '../../src/observability/logger';
import type { Json } from '../../src/protocol/messages';
import { waitFor, sleep } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import { startSentinel, type TestSentinel } from '../support/sentinel';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';
import { parseClusterNodes, parseSentinels } from '../../src/cluster/redis-options';

/**
 * One contract, every backend: the same cases run against the `kv` (memory) and `redis` stream
 * backends, built by the module's own factory. A redis "pair" is two backends on one Redis and
 * key prefix (two nodes); the memory backend pairs with itself.
 */

let redis: TestRedis;
let sentinel: TestSentinel;
let redisCluster: TestRedisCluster;

beforeAll(async () => {
  [redis, sentinel, redisCluster] = await Promise.all([startRedis(), startSentinel(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), sentinel?.stop(), redisCluster?.stop()]);
});

interface Pair {
  a: StreamBackend;
  b: StreamBackend;
}

const backends: Array<[string, () => Promise<Pair>]> = [
  [
    'memory',
    async () => {
      const a = await createStreamBackend(
        { name: 'kv' },
        { logger: silentLogger, nodeId: 'a', cluster: { keyPrefix: 'unused:' } },
      );
      return { a, b: a };
    },
  ],
  [
    'redis',
    async () => {
      const cluster = { redisUrl: redis.url, keyPrefix: `c${randomUUID().slice(0, 8)}:` };
      const a = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'a', cluster });
      const b = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'b', cluster });
      return { a, b };
    },
  ],
  // The same backends on a primary found through Redis Sentinel (issue 14 #1).
  [
    'redis (Sentinel)',
    async () => {
      const cluster = {
        redisSentinels: parseSentinels(sentinel.sentinels),
        redisSentinelName: sentinel.name,
        keyPrefix: `c${randomUUID().slice(0, 8)}:`,
      };
      const a = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'a', cluster });
      const b = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'b', cluster });
      return { a, b };
    },
  ],
  // The same backends on a three-primary Redis Cluster (issue 14 #2).
  [
    'redis (Cluster)',
    async () => {
      const cluster = {
        redisClusterNodes: parseClusterNodes(redisCluster.nodes),
        keyPrefix: `c${randomUUID().slice(0, 8)}:`,
      };
      const a = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'a', cluster });
      const b = await createStreamBackend({ name: 'redis' }, { logger: silentLogger, nodeId: 'b', cluster });
      return { a, b };
    },
  ],
];

async function close(backend: StreamBackend): Promise<void> {
  await backend.bus.close();
  await backend.storage.close();
}

describe.each(backends)('%s stream backend', (_name, open) => {
  let a: StreamBackend;
  let b: StreamBackend;

  beforeEach(async () => {
    ({ a, b } = await open());
  });
  afterEach(async () => {
    await close(a);
    if (b !== a) await close(b);
  });

  test('get of an unknown item is undefined; set returns the value replaced, seen by the other node', async () => {
    expect(await a.storage.get('s', 'g', 'i')).toBeUndefined();
    expect(await a.storage.set('s', 'g', 'i', { v: 1 })).toBeUndefined();
    expect(await b.storage.set('s', 'g', 'i', { v: 2 })).toEqual({ v: 1 });
    expect(await a.storage.get('s', 'g', 'i')).toEqual({ v: 2 });
  });

  test('values round-trip exactly: empty arrays, large integers, key order', async () => {
    const value: Json = { z: [], a: {}, big: 9007199254740991, '10': 1, '2': 2, text: '\u{1F600}' };
    await a.storage.set('s', 'g', 'i', value);
    expect(JSON.stringify(await b.storage.get('s', 'g', 'i'))).toBe(JSON.stringify(value));
  });

  test('delete returns the removed item, then undefined; an emptied group and stream disappear', async () => {
    await a.storage.set('s', 'g', 'i', [1]);
    expect(await b.storage.delete('s', 'g', 'i')).toEqual([1]);
    expect(await a.storage.delete('s', 'g', 'i')).toBeUndefined();
    expect(await a.storage.listGroups('s')).toEqual([]);
    expect((await a.storage.listAll()).map((s) => s.id)).not.toContain('s');
  });

  test('update applies the ops like state::update, creating a missing item', async () => {
    const created = await a.storage.update('s', 'g', 'i', [{ type: 'append', path: 'log', value: [] }]);
    expect(created).toEqual({ oldValue: undefined, newValue: { log: [[]] }, errors: [] });
    const updated = await b.storage.update('s', 'g', 'i', [
      { type: 'increment', path: 'log', by: 1 },
      { type: 'set', path: 'n', value: 9007199254740991 },
    ]);
    expect(updated.oldValue).toEqual({ log: [[]] });
    expect(updated.newValue).toEqual({ log: [[]], n: 9007199254740991 });
    expect(updated.errors.map((e) => [e.op_index, e.code])).toEqual([[0, 'increment.not_number']]);
    expect(await a.storage.get('s', 'g', 'i')).toEqual({ log: [[]], n: 9007199254740991 });
  });

  test('malformed ops fail with deserialization_error and store nothing', async () => {
    const err = await a.storage.update('s', 'g', 'i', [{ type: 'increment', path: 'n', by: 1.5 }]).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    expect(err?.code).toBe('deserialization_error');
    expect(await a.storage.get('s', 'g', 'i')).toBeUndefined();
  });

  test('list returns the items of a group, [] for an unknown group', async () => {
    await a.storage.set('s', 'g', 'one', 1);
    await b.storage.set('s', 'g', 'two', 2);
    await a.storage.set('s', 'other', 'three', 3);
    expect((await b.storage.list('s', 'g')).map((v) => JSON.stringify(v)).sort()).toEqual(['1', '2']);
    expect(await a.storage.list('s', 'nope')).toEqual([]);
  });

  test('listGroups and listAll are sorted, and streams whose names extend each other stay apart', async () => {
    const names = ['a', 'a:b', 'a%3Ab', 'glob*?[x]'];
    for (const name of names) {
      await a.storage.set(name, 'g2', 'i', 1);
      await a.storage.set(name, 'g1:x', 'i', 1);
    }
    for (const name of names) expect(await b.storage.listGroups(name)).toEqual(['g1:x', 'g2']);
    const all = (await b.storage.listAll()).filter((s) => names.includes(s.id));
    expect(all).toEqual([...names].sort().map((id) => ({ id, groups: ['g1:x', 'g2'] })));
  });

  test('50 concurrent increments from two nodes land exactly', async () => {
    const ops = [{ type: 'increment', path: 'n', by: 1 }];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).storage.update('s', 'g', 'counter', ops)),
    );
    expect(await a.storage.get('s', 'g', 'counter')).toEqual({ n: 50 });
  });

  test('every subscriber on every node gets each published event exactly once', async () => {
    const onA: StreamEvent[] = [];
    const onB: StreamEvent[] = [];
    a.bus.subscribe((e) => onA.push(e));
    if (b !== a) b.bus.subscribe((e) => onB.push(e));
    const fromA = streamEvent('s', 'g', 'i', { type: 'create', data: { from: 'a' } });
    const fromB = streamEvent('s', 'g', null, { type: 'event', event: { type: 'ping', data: [] } });
    await a.bus.publish(fromA);
    await b.bus.publish(fromB);
    await waitFor(() => onA.length >= 2 && (b === a || onB.length >= 2), 'both events on every node');
    await sleep(100); // a duplicate would arrive within this
    expect(onA).toHaveLength(2);
    const sorted = (events: StreamEvent[]) =>
      [...events].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(sorted(onA)).toEqual(sorted([fromA, fromB]));
    if (b !== a) expect(sorted(onB)).toEqual(sorted([fromA, fromB]));
  });

  test('an unsubscribed handler gets nothing more', async () => {
    const got: StreamEvent[] = [];
    const unsubscribe = b.bus.subscribe((e) => got.push(e));
    await a.bus.publish(streamEvent('s', 'g', 'i', { type: 'delete', data: 1 }));
    await waitFor(() => got.length === 1, 'the first event');
    unsubscribe();
    await a.bus.publish(streamEvent('s', 'g', 'i', { type: 'delete', data: 2 }));
    await sleep(100);
    expect(got).toHaveLength(1);
  });
});
