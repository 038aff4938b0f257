import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { LINK_PATH } from '../../src/transport/worker-server';
import { startCluster, startEngine, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';

/** `cluster.bus: direct`: calls and results over node-to-node links, Redis when a link cannot take them. */
let redis: TestRedis;
let inspector: Redis;
const engines: TestEngine[] = [];

beforeAll(async () => {
  redis = await startRedis();
  inspector = new Redis(redis.url);
});
afterAll(async () => {
  inspector.disconnect();
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

async function directCluster(): Promise<[TestEngine, TestEngine]> {
  const { nodes } = await startCluster(2, redis.url, {}, 'direct');
  engines.push(...nodes);
  return nodes as [TestEngine, TestEngine];
}

/** PUBLISH commands Redis has executed so far. */
async function publishes(): Promise<number> {
  const info = await inspector.info('commandstats');
  return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

function links(node: TestEngine) {
  const counts = node.engine.cluster?.links;
  if (!counts) throw new Error(`${node.engine.nodeId} is not on the direct bus`);
  return counts;
}

/** Cuts every link socket of `node` as a network failure would (no close handshake). */
function cutLinks(node: TestEngine): void {
  const bus = (node.engine.cluster as unknown as { direct: { sockets: Set<WebSocket> } }).direct;
  for (const socket of bus.sockets) socket.terminate();
}

/** The HTTP status another party gets when it asks for a link to `url`. */
function linkStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url}${LINK_PATH}?node=intruder`, { headers });
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error('the link was accepted'));
    });
    socket.once('error', () => undefined);
  });
}

function echoOn(node: TestEngine, functionId: string, delayMs = 0): { calls: () => number } {
  let calls = 0;
  node.worker(`echo-${randomUUID().slice(0, 4)}`).registerFunction(functionId, async (input: { n: number }) => {
    calls++;
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return { n: input.n };
  });
  return { calls: () => calls };
}

describe('the direct bus', () => {
  it('carries calls and results over one link, with no Redis PUBLISH per call', async () => {
    const [a, b] = await directCluster();
    echoOn(b, 'direct::echo');
    await waitFor(() => a.engine.registry.pool('direct::echo').length === 1, 'direct::echo mirrored on node 1');
    const caller = a.worker('caller');
    // The first call opens the link (lazily) and itself goes over Redis.
    await expect(caller.trigger({ function_id: 'direct::echo', payload: { n: 0 } })).resolves.toEqual({ n: 0 });
    await waitFor(() => links(a).open === 1 && links(b).open === 1, 'the link open on both nodes');

    const before = { published: await publishes(), a: links(a), b: links(b) };
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, n) => caller.trigger({ function_id: 'direct::echo', payload: { n } })),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, n) => ({ n })));
    expect(await publishes()).toBe(before.published);
    expect(links(a).link - before.a.link).toBe(50);
    expect(links(b).link - before.b.link).toBe(50);
    expect(links(a).redis).toBe(before.a.redis);
    expect(links(b).redis).toBe(before.b.redis);
    const scraped = await fetch(`http://127.0.0.1:${a.engine.metricsPort}/metrics`).then((r) => r.text());
    expect(scraped).toMatch(/^iii_cluster_links_open\{[^}]*\} 1$/m);
    expect(scraped).toMatch(new RegExp(`^iii_cluster_bus_messages_total\\{via="link"[^}]*\\} ${links(a).link}$`, 'm'));
    expect(scraped).toMatch(
      new RegExp(`^iii_cluster_bus_messages_total\\{via="redis"[^}]*\\} ${links(a).redis}$`, 'm'),
    );
  });

  it('refuses a link without the right key (401), and a node on the Redis bus has no link path (404)', async () => {
    const [a] = await directCluster();
    await expect(linkStatus(a.url, {})).resolves.toBe(401);
    await expect(linkStatus(a.url, { authorization: `Bearer ${'0'.repeat(64)}` })).resolves.toBe(401);
    const plain = await startEngine({
      nodeId: 'plain',
      cluster: { redisUrl: redis.url, keyPrefix: `t${randomUUID().slice(0, 8)}:` },
    });
    engines.push(plain);
    await expect(linkStatus(plain.url, {})).resolves.toBe(404);
    // Both go on serving.
    await expect(
      a.worker('after').trigger({ function_id: 'engine::functions::list', payload: {} }),
    ).resolves.toBeDefined();
  });

  it('sends calls and results over Redis when the peers cannot dial each other, and every call settles', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    // Both advertise an address where nothing listens (they listen on 127.0.0.1 only).
    const node = (nodeId: string) =>
      startEngine({ nodeId, cluster: { redisUrl: redis.url, keyPrefix, bus: 'direct', advertiseHost: '127.0.0.2' } });
    const [a, b] = await Promise.all([node('node-1'), node('node-2')]);
    engines.push(a, b);
    const echo = echoOn(b, 'direct::unreachable');
    await waitFor(() => a.engine.registry.pool('direct::unreachable').length === 1, 'mirrored on node 1');
    const caller = a.worker('caller');
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, n) => caller.trigger({ function_id: 'direct::unreachable', payload: { n } })),
      );
      expect(results).toEqual(Array.from({ length: 10 }, (_, n) => ({ n })));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(echo.calls()).toBe(30);
    expect(links(a)).toMatchObject({ open: 0, link: 0, redis: 30 });
    expect(links(b)).toMatchObject({ open: 0, link: 0, redis: 30 });
  });

  it('settles every call in flight exactly once when the link breaks, then opens a new link', async () => {
    const [a, b] = await directCluster();
    const echo = echoOn(b, 'direct::slow', 300);
    await waitFor(() => a.engine.registry.pool('direct::slow').length === 1, 'mirrored on node 1');
    const caller = a.worker('caller');
    await caller.trigger({ function_id: 'direct::slow', payload: { n: -1 } });
    await waitFor(() => links(a).open === 1 && links(b).open === 1, 'the link open');

    const settled = new Map<number, number>();
    const calls = Array.from({ length: 20 }, (_, n) =>
      caller.trigger<{ n: number }, { n: number }>({ function_id: 'direct::slow', payload: { n } }).then((out) => {
        settled.set(n, (settled.get(n) ?? 0) + 1);
        return out;
      }),
    );
    await waitFor(() => echo.calls() === 21, 'all 20 calls running on the worker');
    const before = { ...links(b) };
    cutLinks(b);
    // The first result to leave node 2 after the cut goes over Redis and dials a new link;
    // results that leave after that link opens take it. Each crosses exactly once.
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
    expect([...settled.values()]).toEqual(Array(20).fill(1));
    expect(echo.calls()).toBe(21);
    expect(links(b).redis - before.redis).toBeGreaterThanOrEqual(1);
    expect(links(b).redis - before.redis + (links(b).link - before.link)).toBe(20);

    await expect(caller.trigger({ function_id: 'direct::slow', payload: { n: 99 } })).resolves.toEqual({ n: 99 });
    await waitFor(() => links(a).open === 1, 'a new link');
    const viaLink = links(a).link;
    await expect(caller.trigger({ function_id: 'direct::slow', payload: { n: 100 } })).resolves.toEqual({ n: 100 });
    expect(links(a).link).toBe(viaLink + 1);
  });
});
