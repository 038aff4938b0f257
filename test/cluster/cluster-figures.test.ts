import type { IIIClient } from 'iii-sdk';
import { PUBLISH_INTERVAL_MS, type FunctionStats } from '../../src/modules/observability/cluster-figures';
import { startCluster, startEngine, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * `engine::functions::stats`: every node publishes its per-function figures to Redis on a timer,
 * and the built-in on any node merges the live nodes' summaries (counts summed, p50/p99 from the
 * merged histogram) with a row per node. Two in-process nodes over a real redis-server.
 */

async function stats(client: IIIClient, scope?: 'cluster' | 'node'): Promise<FunctionStats> {
  return (await client.trigger({
    function_id: 'engine::functions::stats',
    payload: scope ? { scope } : {},
  })) as FunctionStats;
}

function row(s: FunctionStats, functionId: string) {
  return s.functions.find((f) => f.function_id === functionId);
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('cluster-wide function figures', () => {
  let nodes: TestEngine[] = [];
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    nodes = [];
  });

  test('calls on node A and on node B are summed, with both nodes as rows, from either node', async () => {
    ({ nodes } = await startCluster(2, redis.url));
    const [a, b] = nodes;
    const worker = a.worker('figures-worker');
    worker.registerFunction('fig::work', async (p: { fail?: boolean }) => {
      if (p.fail) throw new Error('asked to fail');
      return { ok: true };
    });
    await waitFor(() => b.engine.registry.pool('fig::work').length === 1, 'the function mirrored on node B');
    const onA = a.worker('caller-a');
    const onB = b.worker('caller-b');
    for (let i = 0; i < 3; i++) await onA.trigger({ function_id: 'fig::work', payload: {} });
    for (let i = 0; i < 2; i++) await onB.trigger({ function_id: 'fig::work', payload: {} });
    await expect(onB.trigger({ function_id: 'fig::work', payload: { fail: true } })).rejects.toThrow();

    // Each node's own figures, then the cluster's once both have published (a 2 s timer).
    const nodeA = row(await stats(onA, 'node'), 'fig::work')!;
    const nodeB = row(await stats(onB, 'node'), 'fig::work')!;
    expect(nodeA.total).toBeGreaterThanOrEqual(3);
    expect(nodeB.total).toBeGreaterThanOrEqual(3);
    expect(nodeB.error).toBeGreaterThanOrEqual(1);
    const expectedTotal = nodeA.total + nodeB.total;
    for (const caller of [onA, onB]) {
      const cluster = await waitFor(
        async () => {
          const s = await stats(caller);
          const f = row(s, 'fig::work');
          return f && f.nodes.length === 2 && f.total === expectedTotal ? { s, f } : undefined;
        },
        'both nodes in the cluster figures',
        4 * PUBLISH_INTERVAL_MS,
      );
      expect(cluster.s.scope).toBe('cluster');
      expect([...cluster.s.nodes].sort()).toEqual(['node-1', 'node-2']);
      const byNode = new Map(cluster.f.nodes.map((n) => [n.node_id, n]));
      expect(byNode.get('node-1')!.total).toBe(nodeA.total);
      expect(byNode.get('node-2')!.total).toBe(nodeB.total);
      expect(cluster.f.error).toBe(nodeA.error + nodeB.error);
      expect(cluster.f.error_rate).toBeCloseTo(cluster.f.error / cluster.f.total, 3);
      expect(cluster.f.p50_ms).toBeGreaterThan(0);
      expect(cluster.f.p99_ms).toBeGreaterThanOrEqual(cluster.f.p50_ms!);
    }
  }, 30_000);

  test('a stopped node drops out of the cluster figures', async () => {
    ({ nodes } = await startCluster(2, redis.url));
    const [a, b] = nodes;
    const caller = a.worker('caller');
    await waitFor(
      async () => (await stats(caller)).nodes.length === 2,
      'both nodes published',
      4 * PUBLISH_INTERVAL_MS,
    );
    await b.close();
    nodes = [a];
    expect((await stats(caller)).nodes).toEqual(['node-1']);
  }, 30_000);
});

test('single node (no Redis): the same shape, with this node as the only row', async () => {
  const t = await startEngine({ nodeId: 'solo' });
  try {
    const w = t.worker('solo-worker');
    w.registerFunction('fig::solo', async () => null);
    for (let i = 0; i < 4; i++) await w.trigger({ function_id: 'fig::solo', payload: {} });
    const s = await stats(w);
    expect(s.nodes).toEqual(['solo']);
    const f = row(s, 'fig::solo')!;
    expect(f.total).toBe(4);
    expect(f.error).toBe(0);
    expect(f.nodes).toEqual([expect.objectContaining({ node_id: 'solo', total: 4 })]);
    await expect(w.trigger({ function_id: 'engine::functions::stats', payload: { scope: 'all' } })).rejects.toThrow(
      /scope/,
    );
  } finally {
    await t.close();
  }
});
