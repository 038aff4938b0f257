import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisConnection } from '../../src/cluster/redis-connection';
import { ephemeralConfig } from '../../src/config/ephemeral';
import { createCronLock } from '../../src/modules/cron/adapters/create';
import { RedisCronLock } from '../../src/modules/cron/adapters/redis-lock';
import { silentLogger } from '../../src/observability/logger';
import { sleep, waitFor } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * The `redis` cron lock against a real Redis: several lock instances stand for several nodes
 * scheduling the same job. Times are epoch ms; ticks in the past are claimed without waiting.
 */

let redis: TestRedis;
let keyPrefix = '';
const locks: RedisCronLock[] = [];
let inspector: Redis;

beforeAll(async () => {
  redis = await startRedis();
  inspector = new Redis(redis.url);
});
afterAll(async () => {
  await inspector.quit();
  await redis.stop();
});
beforeEach(() => {
  keyPrefix = `t${randomUUID().slice(0, 8)}:`;
});
afterEach(async () => {
  await Promise.all(locks.splice(0).map((l) => l.close()));
});

interface Node {
  lock: RedisCronLock;
  /** The node's connection: disconnecting it stands for the node's death. */
  connection: Redis;
}

async function node(
  nodeId: string,
  options: { graceMs?: number; lockTtlMs?: number; url?: string } = {},
): Promise<Node> {
  const connection = redisConnection({ url: options.url ?? redis.url }, `test:${nodeId}`, silentLogger);
  await connection.connect();
  const lock = new RedisCronLock(connection, {
    nodeId,
    keyPrefix,
    lockTtlMs: options.lockTtlMs ?? 30_000,
    graceMs: options.graceMs ?? 20,
    logger: silentLogger,
  });
  locks.push(lock);
  return { lock, connection };
}

/** EVALSHA calls since the last CONFIG RESETSTAT, from INFO commandstats (the inspector's own count none). */
async function evalshaCalls(): Promise<number> {
  const line = (await inspector.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha:'));
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

/** Runs `attempt` and measures how long it took, in ms. */
async function timed<T>(attempt: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await attempt;
  return { value, ms: Date.now() - started };
}

describe('redis cron lock', () => {
  it('two nodes racing for the same ticks: exactly one wins each, 40 times in a row', async () => {
    const [a, b] = await Promise.all([node('a'), node('b')]);
    const base = Date.now() - 100_000;
    for (let i = 0; i < 40; i++) {
      const at = base + i * 1000;
      const results = await Promise.all([a.lock.tryAcquire('job', at), b.lock.tryAcquire('job', at)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      await (results[0] ? a : b).lock.release('job', at);
    }
  });

  it('two nodes without the lease race on the claim alone: exactly one wins each, 40 times in a row', async () => {
    const [leader, a, b] = await Promise.all([node('leader'), node('a'), node('b')]);
    const base = Date.now() - 100_000;
    // The leader takes the lease and then stays silent, like a leader that died.
    expect(await leader.lock.tryAcquire('job', base - 1000)).toBe(true);
    await leader.lock.release('job', base - 1000);
    for (let i = 0; i < 40; i++) {
      const at = base + i * 1000;
      const results = await Promise.all([a.lock.tryAcquire('job', at), b.lock.tryAcquire('job', at)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      await (results[0] ? a : b).lock.release('job', at);
    }
    expect(await inspector.hget(`${keyPrefix}cron:tick:{job}`, 'at')).toBe(String(base + 39_000));
  });

  it('a lagging node loses a tick already fired, and any earlier one; a later tick is its to take', async () => {
    const [a, b] = await Promise.all([node('a'), node('b')]);
    const at = Date.now() - 10_000;
    expect(await a.lock.tryAcquire('job', at)).toBe(true);
    await a.lock.release('job', at);
    expect(await b.lock.tryAcquire('job', at)).toBe(false);
    expect(await b.lock.tryAcquire('job', at - 1000)).toBe(false);
    expect(await b.lock.tryAcquire('job', at + 1000)).toBe(true);
    await b.lock.release('job', at + 1000);
    // Other jobs are independent.
    expect(await b.lock.tryAcquire('other-job', at)).toBe(true);
  });

  it('the lease holder wins at once; a node without it waits the grace, and wins only a tick nobody took', async () => {
    const graceMs = 400;
    const [a, b] = await Promise.all([node('a', { graceMs }), node('b', { graceMs })]);
    const first = Date.now();
    const leader = await timed(a.lock.tryAcquire('job', first));
    expect(leader.value).toBe(true);
    expect(leader.ms).toBeLessThan(graceMs);
    await a.lock.release('job', first);

    // Both try the next tick: the holder at once, the other after the grace, and it loses.
    const second = Date.now() + 10;
    const [fromA, fromB] = await Promise.all([
      timed(a.lock.tryAcquire('job', second)),
      timed(b.lock.tryAcquire('job', second)),
    ]);
    expect(fromA.value).toBe(true);
    expect(fromA.ms).toBeLessThan(graceMs);
    expect(fromB.value).toBe(false);
    // (a timer may fire a millisecond early)
    expect(Date.now()).toBeGreaterThanOrEqual(second + graceMs - 2);
    await a.lock.release('job', second);

    // The leader is silent (dead) for the third tick: the other node fires it after the grace.
    const third = Date.now() + 10;
    const takeover = await timed(b.lock.tryAcquire('job', third));
    expect(takeover.value).toBe(true);
    expect(takeover.ms).toBeGreaterThanOrEqual(graceMs - 2);
    expect(await inspector.hget(`${keyPrefix}cron:tick:{job}`, 'by')).toBe('b');
    await b.lock.release('job', third);
  });

  it('a node that saw the leader claim in time stops contending for the lease: one command a tick', async () => {
    const [a, b] = await Promise.all([node('a', { graceMs: 100 }), node('b', { graceMs: 100 })]);
    // Ticks due now: the leader claims at once, the other node after the grace.
    const tick = async () => {
      const at = Date.now();
      const [fromA, fromB] = await Promise.all([a.lock.tryAcquire('job', at), b.lock.tryAcquire('job', at)]);
      expect([fromA, fromB]).toEqual([true, false]);
      await a.lock.release('job', at);
    };
    // a leads from the first tick (b starts later); the first ticks also load every script.
    const first = Date.now() - 1000;
    expect(await a.lock.tryAcquire('job', first)).toBe(true);
    await a.lock.release('job', first);
    await tick();
    await tick();
    await inspector.config('RESETSTAT');
    for (let i = 0; i < 5; i++) await tick();
    // Per tick: a extends its lease, claims, ends its run (3); b only claims (1).
    expect(await evalshaCalls()).toBe(5 * 4);
  });

  it('a run in progress on one node blocks the job on every node until released, even past lock_ttl_ms', async () => {
    const [a, b] = await Promise.all([node('a', { lockTtlMs: 300 }), node('b', { lockTtlMs: 300 })]);
    const at = Date.now() - 10_000;
    expect(await a.lock.tryAcquire('job', at)).toBe(true);
    expect(await b.lock.tryAcquire('job', at + 1000)).toBe(false);
    // The runner keeps its mark alive: three TTLs later the job is still blocked.
    await sleep(900);
    expect(await b.lock.tryAcquire('job', at + 2000)).toBe(false);
    await a.lock.release('job', at);
    expect(await b.lock.tryAcquire('job', at + 3000)).toBe(true);
    await b.lock.release('job', at + 3000);
  });

  it('a runner that dies mid-run blocks the job for at most lock_ttl_ms, then another node runs it', async () => {
    const [a, b] = await Promise.all([node('a', { lockTtlMs: 500 }), node('b', { lockTtlMs: 500 })]);
    const at = Date.now() - 10_000;
    expect(await a.lock.tryAcquire('job', at)).toBe(true);
    const died = Date.now();
    a.connection.disconnect();
    expect(await b.lock.tryAcquire('job', at + 1000)).toBe(false);
    let tick = at + 1000;
    await waitFor(() => b.lock.tryAcquire('job', (tick += 1000)), 'the job to run again on node b', 5000);
    expect(Date.now() - died).toBeLessThan(500 + 1500);
    await b.lock.release('job', tick);
  });

  it('close() gives up the lease: another node leads the next tick at once', async () => {
    const graceMs = 400;
    const [a, b] = await Promise.all([node('a', { graceMs }), node('b', { graceMs })]);
    expect(await a.lock.tryAcquire('job', Date.now())).toBe(true);
    await a.lock.release('job', 0);
    await a.lock.close();
    const next = await timed(b.lock.tryAcquire('job', Date.now() + 1000));
    expect(next.value).toBe(true);
    expect(next.ms).toBeLessThan(graceMs);
    await b.lock.release('job', 0);
  });

  it('every key of a job starts with the cluster key prefix', async () => {
    const a = await node('a');
    const job = `job-${randomUUID()}`;
    expect(await a.lock.tryAcquire(job, Date.now())).toBe(true);
    expect((await inspector.keys(`*${job}*`)).sort()).toEqual([
      `${keyPrefix}cron:lease:{${job}}`,
      `${keyPrefix}cron:run:{${job}}`,
      `${keyPrefix}cron:tick:{${job}}`,
    ]);
    await a.lock.release(job, 0);
    // The run mark goes with the run; the lease and the tick key stay.
    expect(await inspector.exists(`${keyPrefix}cron:run:{${job}}`)).toBe(0);
  });

  it('Redis down: a tick attempt fails at once with a clear error, none fires twice, and the lock recovers', async () => {
    const own = await startRedis();
    try {
      const a = await node('a', { url: own.url });
      const at = Date.now() - 10_000;
      expect(await a.lock.tryAcquire('job', at)).toBe(true);
      await a.lock.release('job', at);
      await own.stop();
      await waitFor(() => a.connection.status !== 'ready', 'the connection to notice');
      const failed = await timed(
        a.lock.tryAcquire('job', at + 1000).then(
          () => undefined,
          (err: Error) => err,
        ),
      );
      expect(failed.value?.message).toMatch(/Redis is unreachable/);
      expect(failed.ms).toBeLessThan(1000);
      await own.restart();
      await waitFor(() => a.connection.status === 'ready', 'the connection to come back', 10_000);
      // Redis came back empty: the lock works again, for ticks scheduled since it reconnected.
      const next = Date.now() + 10;
      expect(await a.lock.tryAcquire('job', next)).toBe(true);
      expect(await a.lock.tryAcquire('job', next)).toBe(false);
      await a.lock.release('job', next);
    } finally {
      await Promise.all(locks.splice(0).map((l) => l.close()));
      await own.stop();
    }
  });
});

describe('redis cron lock across a Redis restart that lost its data', () => {
  it('a tick the leader fired just before the restart is not fired again by a node still in its grace', async () => {
    const own = await startRedis();
    try {
      // Two nodes: the leader claims at once; the other waits its grace, long enough for the restart.
      const leader = await node('leader', { url: own.url });
      const other = await node('other', { url: own.url, graceMs: 3000 });
      const at = Date.now();
      expect(await leader.lock.tryAcquire('job', at)).toBe(true);
      await leader.lock.release('job', at);
      // The leader holds the lease, so the other node waits out its grace before claiming.
      const late = other.lock.tryAcquire('job', at);
      // The restart empties Redis: the tick key recording the leader's claim is gone.
      await own.stop();
      await own.restart();
      await waitFor(() => other.connection.status === 'ready', 'the other node to reconnect', 10_000);
      const fresh = new Redis(own.url);
      expect(await fresh.exists(`${keyPrefix}cron:tick:{job}`)).toBe(0);
      await fresh.quit();
      expect(await late).toBe(false);
      // A tick scheduled after the reconnection is claimed once, as before.
      const next = Date.now() + 10;
      const results = await Promise.all([leader.lock.tryAcquire('job', next), other.lock.tryAcquire('job', next)]);
      expect(results.filter(Boolean)).toHaveLength(1);
    } finally {
      await Promise.all(locks.splice(0).map((l) => l.close()));
      await own.stop();
    }
  });
});

describe('redis cron lock across a dropped connection to the same Redis', () => {
  it('a tick scheduled before the reconnection is still claimed: the same server lost nothing', async () => {
    const a = await node('a');
    await sleep(100); // the lock has learnt its server's run_id
    const at = Date.now();
    const back = new Promise((resolve) => a.connection.once('ready', resolve));
    // As Sentinel does to every client of a node it reconfigures.
    const list = (await inspector.client('LIST')) as string;
    const id = /id=(\d+) [^\n]*name=test:a\b/.exec(list)?.[1];
    expect(id).toBeDefined();
    await inspector.client('KILL', 'ID', id!);
    await back;
    await sleep(100); // the lock has asked the server who it is
    expect(await a.lock.tryAcquire('job', at)).toBe(true);
    await a.lock.release('job', at);
  });
});

describe('createCronLock', () => {
  const host = (redisUrl: string | undefined) => {
    const config = ephemeralConfig({
      nodeId: 'n1',
      cluster: redisUrl === undefined ? { keyPrefix: 'iii:' } : { redisUrl, keyPrefix },
    });
    return { nodeId: 'n1', logger: silentLogger, config };
  };

  it('redis without a URL (no cluster, no redis_url) fails with a message naming both settings', async () => {
    await expect(createCronLock({ name: 'redis' }, host(undefined))).rejects.toThrow(
      /iii-cron: adapter redis needs cluster.redis_url .*adapter.config.redis_url/,
    );
  });

  it('a bad lock_ttl_ms is refused, naming the option and the value', async () => {
    await expect(createCronLock({ name: 'redis', config: { lock_ttl_ms: 'soon' } }, host(redis.url))).rejects.toThrow(
      'iii-cron: adapter redis: lock_ttl_ms must be a whole number of milliseconds, at least 100, got "soon"',
    );
    await expect(createCronLock({ name: 'redis', config: { lock_ttl_ms: 50 } }, host(redis.url))).rejects.toThrow(
      /at least 100, got 50/,
    );
  });

  it('an unreachable Redis fails at start with a clear error and leaves no reconnect loop', async () => {
    await expect(
      createCronLock({ name: 'redis', config: { redis_url: 'redis://127.0.0.1:1' } }, host(undefined)),
    ).rejects.toThrow(/cannot connect to Redis at 127.0.0.1:1/);
    // ioredis keeps its disconnect timer (disconnectTimeout, 2 s) for the socket that never
    // opened; let it pass so that jest exits cleanly.
    await sleep(2100);
  });

  it('an explicit redis_url overrides the cluster URL; keys keep the cluster prefix', async () => {
    const lock = await createCronLock({ name: 'redis', config: { redis_url: redis.url } }, host('redis://127.0.0.1:1'));
    try {
      expect(await lock.tryAcquire('job', Date.now())).toBe(true);
      expect(await inspector.hget(`${keyPrefix}cron:tick:{job}`, 'by')).toBe('n1');
      await lock.release('job', 0);
    } finally {
      await lock.close();
    }
  });
});
