import { randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { runCli } from '../support/cli';
import { waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * `iii-cluster nodes` (engine::cluster::nodes) against two engine processes over one Redis:
 * every node is listed from whichever node answers, with its state, uptime and worker count,
 * and a node that drains is listed `draining` by the others until it has left.
 */

let redis: TestRedis;
let nodes: NodeProcess[] = [];
const clients: IIIClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  // Node 2 drains for up to 15 s: long enough to be seen draining, bounded if the test fails.
  nodes = await Promise.all(
    [1, 2].map((i) =>
      startNodeProcess({ nodeId: `node-${i}`, redisUrl: redis.url, keyPrefix, env: { III_DRAIN_GRACE_MS: '15000' } }),
    ),
  );
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await redis.stop();
});

function client(url: string, name: string): IIIClient {
  const c = registerWorker(url, { workerName: name, enableMetricsReporting: false, otel: { enabled: false } });
  clients.push(c);
  return c;
}

interface NodeRow {
  node_id: string;
  state: string;
  self: boolean;
  url: string | null;
  uptime_ms: number;
  worker_count: number;
}

async function listNodes(node: NodeProcess): Promise<NodeRow[]> {
  const run = await runCli(['nodes', '--json', '--url', node.url, '--timeout', '5000']);
  if (run.code !== 0) throw new Error(`nodes exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as NodeRow[];
}

test('both nodes are listed from either one, ready, with their workers; a draining node is listed draining, then gone', async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let called = false;
  const worker = client(n2.url, 'slow-app');
  worker.registerFunction('slow::hold', async () => {
    called = true;
    await released;
    return { done: true };
  });
  const caller = client(n1.url, 'caller');

  await waitFor(
    async () => (await listNodes(n1)).find((n) => n.node_id === 'node-2')?.worker_count === 1,
    'node 2 and its worker seen from node 1',
    10_000,
  );
  const fromOne = await listNodes(n1);
  expect(fromOne).toEqual([
    {
      node_id: 'node-1',
      state: 'ready',
      self: true,
      url: expect.stringMatching(/^ws:\/\//),
      started_at_ms: expect.any(Number),
      uptime_ms: expect.any(Number),
      worker_count: 1,
    },
    {
      node_id: 'node-2',
      state: 'ready',
      self: false,
      url: expect.stringMatching(/^ws:\/\//),
      started_at_ms: expect.any(Number),
      uptime_ms: expect.any(Number),
      worker_count: 1,
    },
  ]);
  const fromTwo = await listNodes(n2);
  expect(fromTwo.map((n) => [n.node_id, n.self])).toEqual([
    ['node-2', true],
    ['node-1', false],
  ]);
  const table = await runCli(['nodes', '--url', n1.url]);
  expect(table.stdout).toMatch(
    /^NODE +STATE +UPTIME +WORKERS +URL\nnode-1 \* +ready +\d+s +1 +ws:\/\/\S+\nnode-2 +ready +\d+s +1 +ws:\/\/\S+\n/,
  );

  // A call held by node 2's worker keeps node 2 draining after SIGTERM.
  await waitFor(
    async () =>
      (
        (await caller.trigger({ function_id: 'engine::functions::list', payload: { prefix: 'slow::' } })) as {
          functions: unknown[];
        }
      ).functions.length === 1,
    'slow::hold visible from node 1',
    10_000,
  );
  const held = caller.trigger({ function_id: 'slow::hold', payload: {} });
  await waitFor(() => called, "the call to reach node 2's worker", 10_000);
  const stopped = n2.kill('SIGTERM');
  try {
    await waitFor(
      async () => (await listNodes(n1)).find((n) => n.node_id === 'node-2')?.state === 'draining',
      'node 2 listed draining',
      5000,
    );
    // A draining node takes no new connections: the command says so and exits 3.
    const refused = await runCli(['nodes', '--url', n2.url]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('(HTTP 503)');
  } finally {
    release();
  }
  await expect(held).resolves.toEqual({ done: true });
  // Its node is going away for good: no reconnection attempts.
  await worker.shutdown();
  await stopped;
  await waitFor(async () => (await listNodes(n1)).length === 1, 'node 2 gone from the list', 5000);
  expect((await listNodes(n1))[0]).toMatchObject({ node_id: 'node-1', state: 'ready', worker_count: 1 });
});
