import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { DeadLetter, QueueAdapter, QueueJob, QueueSpec } from '../../src/modules/queue/adapters/adapter';
import { BullmqQueueAdapter } from '../../src/modules/queue/adapters/bullmq';
import { fifoLane } from '../../src/modules/queue/adapters/bullmq-options';
import { MemoryQueueAdapter } from '../../src/modules/queue/adapters/memory';
import { silentLogger } from '../../src/observability/logger';
import { EngineError } from '../../src/protocol/errors';
import { sleep, waitFor } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';
import { startSentinel, type TestSentinel } from '../support/sentinel';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';
import { parseClusterNodes, parseSentinels } from '../../src/cluster/redis-options';

/**
 * One contract, every backend: the same cases run against the memory adapter and the BullMQ
 * adapter (a real redis-server, a fresh key prefix per test), on one Redis, on a primary found
 * through Sentinel and on a three-primary Redis Cluster.
 */

let redis: TestRedis;
let sentinel: TestSentinel;
let cluster: TestRedisCluster;
beforeAll(async () => {
  [redis, sentinel, cluster] = await Promise.all([startRedis(), startSentinel(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), sentinel?.stop(), cluster?.stop()]);
});

/** Where a BullMQ adapter of the tests keeps its queues: one Redis, or the Redis Cluster. */
type Where = 'redis' | 'cluster';

function bullmq(
  keyPrefix = `t${randomUUID().slice(0, 8)}:`,
  dropped: DeadLetter[] = [],
  where: Where = 'redis',
): BullmqQueueAdapter {
  return new BullmqQueueAdapter({
    ...(where === 'cluster' ? { cluster: { nodes: parseClusterNodes(cluster.nodes) } } : { url: redis.url }),
    keyPrefix,
    connectionName: 'test',
    logger: silentLogger,
    onDeadLetterDropped: (_q, d) => dropped.push(d),
  });
}

const backends: Array<[string, (dropped: DeadLetter[]) => QueueAdapter]> = [
  ['memory', (dropped) => new MemoryQueueAdapter((_q, d) => dropped.push(d))],
  ['bullmq', (dropped) => bullmq(undefined, dropped)],
  // BullMQ on a primary found through Redis Sentinel (issue 14 #1): enqueues also WAIT for a replica.
  [
    'bullmq (Sentinel)',
    (dropped) =>
      new BullmqQueueAdapter({
        sentinel: { sentinels: parseSentinels(sentinel.sentinels), name: sentinel.name },
        keyPrefix: `t${randomUUID().slice(0, 8)}:`,
        connectionName: 'test',
        logger: silentLogger,
        onDeadLetterDropped: (_q, d) => dropped.push(d),
      }),
  ],
  // BullMQ on a three-primary Redis Cluster (issue 14 #2): each queue's keys in one slot, queues spread over the shards.
  ['bullmq (Cluster)', (dropped) => bullmq(undefined, dropped, 'cluster')],
];

function spec(overrides: Partial<QueueSpec> = {}): QueueSpec {
  return {
    name: 'q::one',
    label: 'one',
    ordering: 'standard',
    concurrency: 4,
    maxAttempts: 3,
    backoffMs: 10,
    maxDepth: 1000,
    maxBytes: 1_000_000,
    overflow: 'reject',
    maxDeadLetters: 100,
    ...overrides,
  };
}

let seq = 0;
function job(id: string, data: unknown = { id }, group?: string): QueueJob {
  const j: QueueJob = {
    id,
    functionId: 'fn',
    data: data as never,
    sizeBytes: JSON.stringify(data).length,
    enqueuedAtMs: Date.now() + ++seq,
  };
  if (group !== undefined) j.group = group;
  return j;
}

describe.each(backends)('%s queue adapter', (_name, make) => {
  let adapter: QueueAdapter;
  let dropped: DeadLetter[];
  beforeEach(() => {
    dropped = [];
    adapter = make(dropped);
  });
  afterEach(async () => {
    await adapter.close(200);
  });

  test('a message that always fails is tried exactly max_attempts times, then dead-lettered with its last error', async () => {
    await adapter.declare(spec({ maxAttempts: 3 }));
    const attempts: number[] = [];
    await adapter.startConsumer('q::one', async (_job, attempt) => {
      attempts.push(attempt);
      throw new Error(`boom ${attempt}`);
    });
    await adapter.enqueue('q::one', job('a'));
    const [letter] = await waitFor(
      async () => (await adapter.deadLetters('q::one', 0, 10)).at(0) && adapter.deadLetters('q::one', 0, 10),
      'a dead letter',
    );
    await sleep(100);
    expect(attempts).toEqual([1, 2, 3]);
    expect(letter).toMatchObject({ job: { id: 'a', data: { id: 'a' } }, error: 'boom 3', attemptsMade: 3 });
    expect(letter.failedAtMs).toBeGreaterThan(Date.now() - 10_000);
    expect(await adapter.counts('q::one')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 1 });
  });

  test('a message that succeeds on its last attempt is not dead-lettered', async () => {
    await adapter.declare(spec({ maxAttempts: 3 }));
    const attempts: number[] = [];
    await adapter.startConsumer('q::one', async (_job, attempt) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error('not yet');
    });
    await adapter.enqueue('q::one', job('a'));
    await waitFor(() => attempts.length === 3, 'three attempts');
    await waitFor(async () => (await adapter.counts('q::one')).active === 0, 'settled');
    expect(await adapter.counts('q::one')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('the backoff between attempts grows: backoff_ms * 2^(attempt-1)', async () => {
    await adapter.declare(spec({ maxAttempts: 3, backoffMs: 150 }));
    const at: number[] = [];
    await adapter.startConsumer('q::one', async () => {
      at.push(Date.now());
      throw new Error('boom');
    });
    await adapter.enqueue('q::one', job('a'));
    await waitFor(() => at.length === 3, 'three attempts');
    const [first, second] = [at[1] - at[0], at[2] - at[1]];
    expect(first).toBeGreaterThanOrEqual(140);
    expect(second).toBeGreaterThanOrEqual(290);
  });

  test('redrive one, discard one, redrive all: dead letters oldest first, attempts reset', async () => {
    await adapter.declare(spec({ maxAttempts: 1 }));
    let healthy = false;
    const delivered: string[] = [];
    await adapter.startConsumer('q::one', async (j, attempt) => {
      if (!healthy) throw new Error(`down ${j.id}`);
      delivered.push(`${j.id}@${attempt}`);
    });
    for (const id of ['a', 'b', 'c']) {
      await adapter.enqueue('q::one', job(id));
      await waitFor(
        async () => (await adapter.counts('q::one')).deadLetters === ['a', 'b', 'c'].indexOf(id) + 1,
        `${id} dead`,
      );
    }
    expect((await adapter.deadLetters('q::one', 0, 10)).map((l) => l.job.id)).toEqual(['a', 'b', 'c']);
    expect((await adapter.deadLetters('q::one', 1, 1)).map((l) => l.job.id)).toEqual(['b']);
    healthy = true;
    expect(await adapter.redrive('q::one', 'b')).toBe(true);
    await waitFor(() => delivered.includes('b@1'), 'b redriven');
    expect(await adapter.redrive('q::one', 'b')).toBe(false);
    expect(await adapter.redrive('q::one', 'nope')).toBe(false);
    expect(await adapter.discard('q::one', 'a')).toBe(true);
    expect(await adapter.discard('q::one', 'a')).toBe(false);
    expect(await adapter.redriveAll('q::one')).toBe(1);
    await waitFor(() => delivered.includes('c@1'), 'c redriven');
    await waitFor(async () => (await adapter.counts('q::one')).active === 0, 'settled');
    expect(await adapter.counts('q::one')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
    expect(delivered.sort()).toEqual(['b@1', 'c@1']);
  });

  test('max_dead_letters drops the oldest dead letter', async () => {
    await adapter.declare(spec({ maxAttempts: 1, maxDeadLetters: 1 }));
    await adapter.startConsumer('q::one', async () => {
      throw new Error('boom');
    });
    await adapter.enqueue('q::one', job('a'));
    await waitFor(async () => (await adapter.counts('q::one')).deadLetters === 1, 'a dead');
    await adapter.enqueue('q::one', job('b'));
    await waitFor(() => dropped.length === 1, 'a dropped');
    expect(dropped[0].job.id).toBe('a');
    expect((await adapter.deadLetters('q::one', 0, 10)).map((l) => l.job.id)).toEqual(['b']);
  });

  test('counts: waiting before a consumer, active up to concurrency while deliveries run', async () => {
    await adapter.declare(spec({ concurrency: 2 }));
    for (const id of ['a', 'b', 'c']) await adapter.enqueue('q::one', job(id));
    expect(await adapter.counts('q::one')).toEqual({ waiting: 3, delayed: 0, active: 0, deadLetters: 0 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    await adapter.startConsumer('q::one', async () => {
      running++;
      await gate;
    });
    await waitFor(() => running === 2, 'two deliveries running');
    await waitFor(async () => (await adapter.counts('q::one')).active === 2, 'two active');
    expect(await adapter.counts('q::one')).toEqual({ waiting: 1, delayed: 0, active: 2, deadLetters: 0 });
    release();
    await waitFor(
      async () =>
        JSON.stringify(await adapter.counts('q::one')) ===
        JSON.stringify({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 }),
      'all done',
    );
    expect(running).toBe(3);
  });

  test('max_depth: a full queue refuses with queue_full; drop_oldest makes room instead', async () => {
    await adapter.declare(spec({ maxDepth: 2 }));
    await adapter.enqueue('q::one', job('a'));
    await adapter.enqueue('q::one', job('b'));
    const refused = await adapter.enqueue('q::one', job('c')).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(EngineError);
    expect((refused as EngineError).code).toBe('queue_full');
    await adapter.declare(spec({ name: 'q::backlog', maxDepth: 2, overflow: 'drop_oldest' }));
    for (const id of ['a', 'b']) expect(await adapter.enqueue('q::backlog', job(id))).toBe(0);
    expect(await adapter.enqueue('q::backlog', job('c'))).toBe(1);
    expect((await adapter.takeAll('q::backlog')).map((j) => j.id)).toEqual(['b', 'c']);
    expect(await adapter.counts('q::backlog')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
  });

  test('FIFO: order holds under retry (a failing message is retried before the next one)', async () => {
    await adapter.declare(spec({ ordering: 'fifo', concurrency: 1, maxAttempts: 3, backoffMs: 30 }));
    const log: string[] = [];
    const failedOnce = new Set<string>();
    await adapter.startConsumer('q::one', async (j, attempt) => {
      log.push(`${j.id}@${attempt}`);
      if ((j.id === 'm2' || j.id === 'm4') && !failedOnce.has(j.id)) {
        failedOnce.add(j.id);
        throw new Error('once');
      }
    });
    for (let i = 1; i <= 6; i++) await adapter.enqueue('q::one', job(`m${i}`, { i }, 'g'));
    await waitFor(() => log.length === 8, 'eight deliveries');
    expect(log).toEqual(['m1@1', 'm2@1', 'm2@2', 'm3@1', 'm4@1', 'm4@2', 'm5@1', 'm6@1']);
  });

  test('FIFO: a retry holds up only its own group; other groups keep flowing', async () => {
    // With 4 lanes, groups g and h hash to different BullMQ lanes (fifoLane: 2 and 3).
    expect([fifoLane('g', 4), fifoLane('h', 4)]).toEqual([2, 3]);
    await adapter.declare(spec({ ordering: 'fifo', concurrency: 4, maxAttempts: 3, backoffMs: 400 }));
    const log: string[] = [];
    let failed = false;
    await adapter.startConsumer('q::one', async (j) => {
      log.push(j.id);
      if (j.id === 'g1' && !failed) {
        failed = true;
        throw new Error('once');
      }
    });
    for (const [id, group] of [
      ['g1', 'g'],
      ['g2', 'g'],
      ['h1', 'h'],
      ['h2', 'h'],
    ] as const)
      await adapter.enqueue('q::one', job(id, { id }, group));
    await waitFor(() => log.length === 5, 'five deliveries', 5000);
    expect(log.filter((id) => id.startsWith('g'))).toEqual(['g1', 'g1', 'g2']);
    expect(log.filter((id) => id.startsWith('h'))).toEqual(['h1', 'h2']);
    expect(log.indexOf('h2')).toBeLessThan(log.lastIndexOf('g1'));
  });

  test('FIFO: dead-lettered after exactly max_attempts; redriven with its attempts reset', async () => {
    await adapter.declare(spec({ ordering: 'fifo', concurrency: 2, maxAttempts: 2, backoffMs: 10 }));
    let healthy = false;
    const attempts: string[] = [];
    await adapter.startConsumer('q::one', async (j, attempt) => {
      attempts.push(`${j.id}@${attempt}`);
      if (!healthy) throw new Error(`down at ${attempt}`);
    });
    await adapter.enqueue('q::one', job('f1', { id: 'f1' }, 'g'));
    await waitFor(async () => (await adapter.counts('q::one')).deadLetters === 1, 'f1 dead');
    expect(await adapter.deadLetters('q::one', 0, 10)).toMatchObject([
      { job: { id: 'f1' }, error: 'down at 2', attemptsMade: 2 },
    ]);
    healthy = true;
    expect(await adapter.redrive('q::one', 'f1')).toBe(true);
    await waitFor(() => attempts.length === 3, 'f1 redriven');
    expect(attempts).toEqual(['f1@1', 'f1@2', 'f1@1']);
  });

  test('close waits for deliveries in flight, and they are acknowledged', async () => {
    await adapter.declare(spec());
    let finished = false;
    let started = false;
    await adapter.startConsumer('q::one', async () => {
      started = true;
      await sleep(300);
      finished = true;
    });
    await adapter.enqueue('q::one', job('a'));
    await waitFor(() => started, 'delivery started');
    await adapter.close(5000);
    expect(finished).toBe(true);
  });

  test('close gives up on a delivery that outlasts the grace period', async () => {
    await adapter.declare(spec());
    let started = false;
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    await adapter.startConsumer('q::one', async () => {
      started = true;
      await stuck;
    });
    await adapter.enqueue('q::one', job('a'));
    await waitFor(() => started, 'delivery started');
    const begin = Date.now();
    await adapter.close(200);
    expect(Date.now() - begin).toBeLessThan(2000);
    release();
  });
});

// Two nodes of an engine cluster: two adapters on one key prefix, on one Redis and on the Redis Cluster.
describe.each<[string, Where]>([
  ['one Redis', 'redis'],
  ['a Redis Cluster', 'cluster'],
])('bullmq queue adapter shared by two nodes, on %s', (_name, where) => {
  test('two adapters on one prefix share the queue: each message is delivered once', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [bullmq(keyPrefix, [], where), bullmq(keyPrefix, [], where)];
    try {
      const seen = new Map<string, string[]>();
      for (const [node, adapter] of [
        ['a', a],
        ['b', b],
      ] as const) {
        await adapter.declare(spec({ concurrency: 2 }));
        await adapter.startConsumer('q::one', async (j) => {
          seen.set(j.id, [...(seen.get(j.id) ?? []), node]);
          await sleep(5);
        });
      }
      for (let i = 0; i < 40; i++) await (i % 2 ? a : b).enqueue('q::one', job(`j${i}`));
      await waitFor(() => seen.size === 40, 'forty messages', 10_000);
      await sleep(200);
      expect([...seen.values()].every((nodes) => nodes.length === 1)).toBe(true);
      expect(new Set([...seen.values()].flat())).toEqual(new Set(['a', 'b']));
    } finally {
      await Promise.all([a.close(200), b.close(200)]);
    }
  });

  test('a delivery abandoned by a closed node is redelivered elsewhere by the stalled-job check', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [bullmq(keyPrefix, [], where), bullmq(keyPrefix, [], where)];
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    try {
      await a.declare(spec());
      await b.declare(spec());
      let startedOnA = false;
      await a.startConsumer('q::one', async () => {
        startedOnA = true;
        await stuck;
      });
      await a.enqueue('q::one', job('x'));
      await waitFor(() => startedOnA, 'delivery on a');
      await a.close(0);
      const attempts: number[] = [];
      await b.startConsumer('q::one', async (_j, attempt) => {
        attempts.push(attempt);
      });
      // Lock 4 s + two stalled checks of 1 s; a stall is not an attempt.
      await waitFor(() => attempts.length === 1, 'redelivery on b', 15_000);
      expect(attempts).toEqual([1]);
    } finally {
      release();
      await Promise.all([a.close(0), b.close(200)]);
    }
  }, 30_000);

  test("FIFO after a node's death: the abandoned message runs next, keeping the attempts it made", async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [bullmq(keyPrefix, [], where), bullmq(keyPrefix, [], where)];
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const fifo = spec({ ordering: 'fifo', concurrency: 1, maxAttempts: 3, backoffMs: 10 });
    try {
      await a.declare(fifo);
      await b.declare(fifo);
      const onA: string[] = [];
      await a.startConsumer('q::one', async (j, attempt) => {
        onA.push(`${j.id}@${attempt}`);
        if (attempt === 1) throw new Error('first attempt fails');
        await stuck;
      });
      for (let i = 1; i <= 3; i++) await a.enqueue('q::one', job(`m${i}`, { i }, 'g'));
      await waitFor(() => onA.length === 2, 'm1 failed once, then held');
      await a.close(0);
      const onB: string[] = [];
      await b.startConsumer('q::one', async (j, attempt) => {
        onB.push(`${j.id}@${attempt}`);
      });
      await waitFor(() => onB.length === 3, 'the rest on b', 15_000);
      expect(onA).toEqual(['m1@1', 'm1@2']);
      // Attempt 2 never answered: a stall is not an attempt, so it is attempt 2 again, not 1.
      expect(onB).toEqual(['m1@2', 'm2@1', 'm3@1']);
    } finally {
      release();
      await Promise.all([a.close(0), b.close(200)]);
    }
  }, 30_000);

  test('a graceful close acknowledges the delivery it waited for: nothing is left active', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const [a, b] = [bullmq(keyPrefix, [], where), bullmq(keyPrefix, [], where)];
    try {
      await a.declare(spec());
      await b.declare(spec());
      let started = false;
      await a.startConsumer('q::one', async () => {
        started = true;
        await sleep(200);
      });
      await a.enqueue('q::one', job('x'));
      await waitFor(() => started, 'delivery on a');
      await a.close(5000);
      expect(await b.counts('q::one')).toEqual({ waiting: 0, delayed: 0, active: 0, deadLetters: 0 });
    } finally {
      await Promise.all([a.close(0), b.close(200)]);
    }
  });
});

describe('bullmq key layout', () => {
  /** Every key under a prefix, on each primary of the Redis Cluster or on the one Redis, with the port that holds it. */
  async function keysOf(where: Where, keyPrefix: string): Promise<Array<{ key: string; port: number }>> {
    const ports = where === 'cluster' ? cluster.ports : [Number(new URL(redis.url).port)];
    const found: Array<{ key: string; port: number }> = [];
    for (const port of ports) {
      const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
      try {
        await node.connect();
        for (const key of await node.keys(`${keyPrefix}*`)) found.push({ key, port });
      } finally {
        node.disconnect();
      }
    }
    return found;
  }

  /** A standard and a FIFO queue (two lanes) with a message each, then their keys. */
  async function filled(where: Where): Promise<{ keyPrefix: string; keys: Array<{ key: string; port: number }> }> {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const adapter = bullmq(keyPrefix, [], where);
    try {
      await adapter.declare(spec());
      await adapter.declare(spec({ name: 'q::fifo', ordering: 'fifo', concurrency: 2 }));
      await adapter.enqueue('q::one', job('a'));
      for (const group of ['g', 'h', 'i', 'j']) await adapter.enqueue('q::fifo', job(`f${group}`, {}, group));
    } finally {
      await adapter.close(200);
    }
    return { keyPrefix, keys: await keysOf(where, keyPrefix) };
  }

  test('one Redis: the keys keep their names, <prefix>bull:<queue>:..., so a rolling upgrade finds its queues', async () => {
    const { keyPrefix, keys } = await filled('redis');
    const names = keys.map((k) => k.key);
    expect(names).toEqual(
      expect.arrayContaining([
        `${keyPrefix}bull:q%3A%3Aone:wait`,
        `${keyPrefix}bull:q%3A%3Aone:ma`,
        `${keyPrefix}bull:q%3A%3Afifo:lanes`,
        `${keyPrefix}bull:q%3A%3Afifo%230:meta`,
        `${keyPrefix}bull:q%3A%3Afifo%231:meta`,
      ]),
    );
    expect(names.filter((k) => k.includes('{'))).toEqual([]);
  });

  test("Redis Cluster: every key of a queue, its lanes and lane count included, is in the queue's slot; queues spread over the shards", async () => {
    const { keyPrefix, keys } = await filled('cluster');
    const slotOf = async (key: string): Promise<number> => {
      const node = new Redis({ host: '127.0.0.1', port: cluster.ports[0], lazyConnect: true });
      try {
        await node.connect();
        return Number(await node.cluster('KEYSLOT', key));
      } finally {
        node.disconnect();
      }
    };
    const byQueue = new Map<string, { slots: Set<number>; ports: Set<number>; keys: string[] }>();
    for (const { key, port } of keys) {
      const tag = /^[^{]*\{([^}]+)\}/.exec(key)?.[1] ?? 'untagged';
      const entry = byQueue.get(tag) ?? { slots: new Set<number>(), ports: new Set<number>(), keys: [] };
      entry.slots.add(await slotOf(key));
      entry.ports.add(port);
      entry.keys.push(key);
      byQueue.set(tag, entry);
    }
    expect([...byQueue.keys()].sort()).toEqual(['q%3A%3Afifo', 'q%3A%3Aone']);
    for (const entry of byQueue.values()) {
      expect(entry.slots.size).toBe(1);
      expect(entry.ports.size).toBe(1);
    }
    expect(byQueue.get('q%3A%3Afifo')!.keys).toEqual(
      expect.arrayContaining([
        `${keyPrefix}bull:{q%3A%3Afifo}:q%3A%3Afifo:lanes`,
        `${keyPrefix}bull:{q%3A%3Afifo}:q%3A%3Afifo%230:meta`,
        `${keyPrefix}bull:{q%3A%3Afifo}:q%3A%3Afifo%231:meta`,
      ]),
    );
    expect(byQueue.get('q%3A%3Aone')!.keys).toEqual(
      expect.arrayContaining([
        `${keyPrefix}bull:{q%3A%3Aone}:q%3A%3Aone:wait`,
        `${keyPrefix}bull:{q%3A%3Aone}:q%3A%3Aone:ma`,
      ]),
    );
    // Different queues, different slots: here on different primaries.
    expect(new Set([...byQueue.values()].flatMap((e) => [...e.ports])).size).toBe(2);
  });

  test('Redis Cluster: a key prefix with an empty hash tag is refused, saying why', () => {
    expect(() => bullmq('x{}:', [], 'cluster')).toThrow(
      /Redis Cluster: the key prefix "x\{\}:" \(cluster.key_prefix \/ III_REDIS_KEY_PREFIX\) holds an empty hash tag "\{\}".*CROSSSLOT; remove the braces/,
    );
  });
});

describe('bullmq Worker connections on a Redis Cluster', () => {
  test("the Worker's blocking connection carries BullMQ's name: a Cluster's duplicate keeps the options BullMQ gives it", async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const adapter = bullmq(keyPrefix, [], 'cluster');
    try {
      await adapter.declare(spec());
      const seen: string[] = [];
      await adapter.startConsumer('q::one', async (j) => {
        seen.push(j.id);
      });
      await adapter.enqueue('q::one', job('a'));
      await waitFor(() => seen.includes('a'), 'a delivered');
      // BullMQ names its blocking connection <prefix>:<base64 of the queue name> (CLIENT SETNAME on each node connection).
      const blockingName = `${keyPrefix}bull:{q%3A%3Aone}:${Buffer.from('q%3A%3Aone').toString('base64')}`;
      const names: string[] = [];
      for (const port of cluster.ports) {
        const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
        try {
          await node.connect();
          const list = String(await node.client('LIST'));
          names.push(...[...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]));
        } finally {
          node.disconnect();
        }
      }
      expect(names).toContain(blockingName);
    } finally {
      await adapter.close(200);
    }
  });
});

describe('bullmq queue adapter while Redis is down', () => {
  let own: TestRedis;
  beforeAll(async () => {
    own = await startRedis();
  });
  afterAll(async () => {
    await own.stop();
  });

  test('enqueue fails at once with enqueue_error, and the consumer resumes by itself when Redis is back', async () => {
    const adapter = new BullmqQueueAdapter({
      url: own.url,
      keyPrefix: 'iii:',
      connectionName: 'test',
      logger: silentLogger,
      onDeadLetterDropped: () => undefined,
    });
    try {
      await adapter.declare(spec());
      const seen: string[] = [];
      await adapter.startConsumer('q::one', async (j) => {
        seen.push(j.id);
      });
      await adapter.enqueue('q::one', job('before'));
      await waitFor(() => seen.includes('before'), 'delivery before the outage');

      await own.stop();
      const begin = Date.now();
      const err = await adapter.enqueue('q::one', job('during')).catch((e: unknown) => e);
      expect(Date.now() - begin).toBeLessThan(1000);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('enqueue_error');
      expect((err as EngineError).message).toMatch(/Queue 'one': the message was not enqueued, Redis failed/);
      await expect(adapter.counts('q::one')).rejects.toThrow(/Queue 'one': Redis failed/);

      await own.restart();
      // Redis restarted empty (no persistence): the queue's keys are new, the consumer is the old one.
      await waitFor(
        () =>
          adapter.enqueue('q::one', job('after')).then(
            () => true,
            () => false,
          ),
        'enqueue accepted again',
        10_000,
      );
      await waitFor(() => seen.includes('after'), 'delivery after the outage', 15_000);
    } finally {
      await adapter.close(200);
    }
  }, 40_000);
});
