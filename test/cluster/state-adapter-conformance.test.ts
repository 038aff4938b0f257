import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StateAdapter } from '../../src/modules/state/adapters';
import { FileStateAdapter } from '../../src/modules/state/adapters/file';
import { MemoryStateAdapter } from '../../src/modules/state/adapters/memory';
import { RedisStateAdapter } from '../../src/modules/state/adapters/redis';
import { silentLogger } from '../../src/observability/logger';
import type { Json } from '../../src/protocol/messages';
import { startRedis, type TestRedis } from '../support/redis';
import { startSentinel, type TestSentinel } from '../support/sentinel';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';
import { parseClusterNodes, parseSentinels } from '../../src/cluster/redis-options';

/**
 * One contract, every backend: the same cases run against the memory, file and redis state
 * adapters. A redis "pair" is two adapter instances on one Redis and key prefix (two nodes);
 * the in-process backends pair an adapter with itself.
 */

let redis: TestRedis;
let sentinel: TestSentinel;
let cluster: TestRedisCluster;
const dirs: string[] = [];

beforeAll(async () => {
  [redis, sentinel, cluster] = await Promise.all([startRedis(), startSentinel(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), sentinel?.stop(), cluster?.stop()]);
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Pair {
  a: StateAdapter;
  b: StateAdapter;
}

const backends: Array<[string, () => Promise<Pair>]> = [
  [
    'memory',
    async () => {
      const a = new MemoryStateAdapter();
      return { a, b: a };
    },
  ],
  [
    'file',
    async () => {
      const directory = await mkdtemp(join(tmpdir(), 'iii-state-conf-'));
      dirs.push(directory);
      const a = new FileStateAdapter({ directory, logger: silentLogger });
      return { a, b: a };
    },
  ],
  [
    'redis',
    async () => {
      const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
      const make = (node: string) =>
        new RedisStateAdapter({
          url: redis.url,
          keyPrefix,
          connectionName: `conformance:${node}`,
          logger: silentLogger,
        });
      return { a: make('a'), b: make('b') };
    },
  ],
  // The same adapter on a primary found through Redis Sentinel (issue 14 #1).
  [
    'redis (Sentinel)',
    async () => {
      const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
      const target = { sentinel: { sentinels: parseSentinels(sentinel.sentinels), name: sentinel.name } };
      const make = (node: string) =>
        new RedisStateAdapter({ ...target, keyPrefix, connectionName: `conformance:${node}`, logger: silentLogger });
      return { a: make('a'), b: make('b') };
    },
  ],
  // The same adapter on a three-primary Redis Cluster (issue 14 #2): scopes spread over the shards.
  [
    'redis (Cluster)',
    async () => {
      const keyPrefix = `c${randomUUID().slice(0, 8)}:`;
      const target = { cluster: { nodes: parseClusterNodes(cluster.nodes) } };
      const make = (node: string) =>
        new RedisStateAdapter({ ...target, keyPrefix, connectionName: `conformance:${node}`, logger: silentLogger });
      return { a: make('a'), b: make('b') };
    },
  ],
];

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const outcome = await promise.then(
    (value) => ({ ok: true as const, value }),
    (err: { code?: string; message: string }) => ({ ok: false as const, err }),
  );
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  return outcome.err;
}

const byText = (values: Json[]) => values.map((v) => JSON.stringify(v)).sort();

describe.each(backends)('%s state adapter', (_name, open) => {
  let a: StateAdapter;
  let b: StateAdapter;

  beforeEach(async () => {
    ({ a, b } = await open());
    await a.open();
    if (b !== a) await b.open();
  });
  afterEach(async () => {
    await a.close();
    if (b !== a) await b.close();
  });

  test('get of an unknown key is undefined, a stored null is null', async () => {
    expect(await a.get('s', 'missing')).toBeUndefined();
    expect(await a.set('s', 'nil', null, undefined)).toBeUndefined();
    expect(await a.get('s', 'nil')).toBeNull();
    expect(await a.set('s', 'nil', 1, undefined)).toBeNull();
  });

  test('set returns the value it replaced, and the other node reads the new one', async () => {
    expect(await a.set('s', 'k', { v: 1 }, undefined)).toBeUndefined();
    expect(await b.set('s', 'k', { v: 2 }, undefined)).toEqual({ v: 1 });
    expect(await a.get('s', 'k')).toEqual({ v: 2 });
  });

  test('values round-trip exactly: empty arrays and objects, large integers, key order, unicode', async () => {
    const value: Json = {
      z: [],
      a: {},
      big: 9007199254740991,
      neg: -0.5,
      text: 'h\u00e9llo \u{1F600} "q"',
      list: [null, true, [], {}],
      '10': 1,
      '2': 2,
    };
    await a.set('s', 'k', value, undefined);
    expect(JSON.stringify(await b.get('s', 'k'))).toBe(JSON.stringify(value));
  });

  test('set refuses a value over max_value_bytes with VALUE_TOO_LARGE and keeps the old one', async () => {
    await a.set('s', 'k', 'small', undefined);
    const err = await rejection(a.set('s', 'k', 'x'.repeat(100), 50));
    expect(err.code).toBe('VALUE_TOO_LARGE');
    expect(await a.get('s', 'k')).toBe('small');
  });

  test('delete returns the removed value; a second delete and an unknown key return undefined', async () => {
    await a.set('s', 'k', [1, 2], undefined);
    expect(await b.delete('s', 'k')).toEqual([1, 2]);
    expect(await a.delete('s', 'k')).toBeUndefined();
    expect(await a.get('s', 'k')).toBeUndefined();
  });

  test('update creates a missing key from {} and reports old_value undefined', async () => {
    const outcome = await a.update('s', 'k', [{ type: 'increment', path: 'n', by: 2 }], undefined);
    expect(outcome).toEqual({ old_value: undefined, new_value: { n: 2 }, errors: [] });
    expect(await b.get('s', 'k')).toEqual({ n: 2 });
  });

  test('update applies every op in order, keeps empty arrays and exact integers', async () => {
    await a.set('s', 'k', { list: [], big: 9007199254740990, keep: { b: 1, a: 2 } }, undefined);
    const outcome = await b.update(
      's',
      'k',
      [
        { type: 'increment', path: 'big', by: 1 },
        { type: 'set', path: 'fresh', value: [] },
        { type: 'append', path: ['fresh'], value: 'x' },
        { type: 'merge', path: ['deep', 'er'], value: { e: [] } },
        { type: 'remove', path: 'list' },
      ],
      undefined,
    );
    const expected = { big: 9007199254740991, keep: { b: 1, a: 2 }, fresh: ['x'], deep: { er: { e: [] } } };
    expect(outcome.errors).toEqual([]);
    expect(JSON.stringify(outcome.new_value)).toBe(JSON.stringify(expected));
    expect(JSON.stringify(await a.get('s', 'k'))).toBe(JSON.stringify(expected));
  });

  test('an op that fails is reported with its index and code, the others still apply', async () => {
    await a.set('s', 'k', { n: 'text' }, undefined);
    const outcome = await a.update(
      's',
      'k',
      [
        { type: 'increment', path: 'n', by: 1 },
        { type: 'set', path: 'ok', value: true },
        { type: 'merge', path: '__proto__', value: {} },
      ],
      undefined,
    );
    expect(outcome.new_value).toEqual({ n: 'text', ok: true });
    expect(outcome.errors.map((e) => [e.op_index, e.code])).toEqual([
      [0, 'increment.not_number'],
      [2, 'merge.path.proto_polluted'],
    ]);
  });

  test('malformed ops fail with deserialization_error and store nothing', async () => {
    const err = await rejection(a.update('s', 'k', [{ type: 'teleport', path: 'x' }], undefined));
    expect(err.code).toBe('deserialization_error');
    expect((await rejection(a.update('s', 'k', { not: 'an array' }, undefined))).code).toBe('deserialization_error');
    expect(await a.get('s', 'k')).toBeUndefined();
  });

  test('update refuses a result over max_value_bytes with VALUE_TOO_LARGE and stores nothing', async () => {
    await a.set('s', 'k', { a: 1 }, undefined);
    const err = await rejection(a.update('s', 'k', [{ type: 'set', path: 'big', value: 'x'.repeat(100) }], 50));
    expect(err.code).toBe('VALUE_TOO_LARGE');
    expect(await a.get('s', 'k')).toEqual({ a: 1 });
  });

  test('list returns the values of a scope, [] for an unknown scope', async () => {
    await a.set('s', 'one', 1, undefined);
    await b.set('s', 'two', { two: 2 }, undefined);
    await a.set('s', 'three', [3], undefined);
    await a.set('other', 'x', 'not in s', undefined);
    expect(byText(await b.list('s'))).toEqual(byText([1, { two: 2 }, [3]]));
    expect(await a.list('nothing-here')).toEqual([]);
  });

  test('listGroups names the scopes holding keys, odd characters included; an emptied scope disappears', async () => {
    const scopes = ['plain', 'with:colon', 'glob*?[x]\\', 'h\u00e9'];
    for (const scope of scopes) await a.set(scope, 'k', 1, undefined);
    await a.set('gone', 'k', 1, undefined);
    await b.delete('gone', 'k');
    expect((await b.listGroups()).sort()).toEqual([...scopes].sort());
  });

  test('50 concurrent increments from two nodes land exactly', async () => {
    const ops = [{ type: 'increment', path: 'n', by: 1 }];
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).update('s', 'counter', ops, undefined)),
    );
    expect(await a.get('s', 'counter')).toEqual({ n: 50 });
    // Each update saw a distinct predecessor: none was lost or applied twice.
    const seen = outcomes
      .map((o) => (o.old_value === undefined ? 0 : (o.old_value as { n: number }).n))
      .sort((x, y) => x - y);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
