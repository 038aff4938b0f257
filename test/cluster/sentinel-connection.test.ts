import { Redis } from 'ioredis';
import { redisConnection } from '../../src/cluster/redis-connection';
import { parseSentinels } from '../../src/cluster/redis-options';
import { silentLogger } from '../../src/observability/logger';
import { startSentinel, type TestSentinel } from '../support/sentinel';
import { waitFor } from '../support/engine';

let sentinel: TestSentinel;
let connection: Redis | undefined;

beforeAll(async () => {
  sentinel = await startSentinel();
});

afterAll(async () => {
  connection?.disconnect();
  await sentinel?.stop();
});

/** Clients subscribed to something on each sentinel: the failover detectors of our connections. */
async function sentinelSubscribers(): Promise<number> {
  let count = 0;
  for (const address of sentinel.sentinels.split(',')) {
    const [host, port] = address.split(':');
    const admin = new Redis({ host, port: Number(port), lazyConnect: true, retryStrategy: () => null });
    try {
      await admin.connect();
      const list = (await admin.client('LIST')) as string;
      count += list.split('\n').filter((line) => /\bsub=[1-9]/.test(line)).length;
    } finally {
      admin.disconnect();
    }
  }
  return count;
}

test('a connection through Sentinel drops its failover detector with its stream and follows the failover by itself', async () => {
  const target = { sentinel: { sentinels: parseSentinels(sentinel.sentinels), name: sentinel.name } };
  const redis = redisConnection(target, 'test:sentinel', silentLogger);
  connection = redis;
  await redis.connect();
  await redis.set('k', 'before');
  // Up: one detector client subscribed to +switch-master on each of the three sentinels.
  await waitFor(async () => (await sentinelSubscribers()) === 3, 'the failover detector subscribed', 5000);

  const old = await sentinel.killPrimary();
  await waitFor(() => redis.status !== 'ready', 'the connection noticed the primary is gone', 5000);
  // Down: the detector went with its stream. ioredis kept it listening while the connection
  // reconnected, and its +switch-master could abort a reconnect and end the connection for good.
  expect(await sentinelSubscribers()).toBe(0);

  await sentinel.waitForNewPrimary(old);
  await waitFor(() => redis.status === 'ready', 'the connection back on the new primary', 15_000);
  await redis.set('k', 'after');
  expect(await redis.get('k')).toBe('after');
  expect(redis.status).toBe('ready');
  await waitFor(async () => (await sentinelSubscribers()) === 3, 'a new failover detector subscribed', 5000);
}, 60_000);
