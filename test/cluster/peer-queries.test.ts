import {
  DEFAULT_QUERY_TIMEOUT_MS,
  MAX_PENDING_QUERIES,
  MAX_QUERY_TIMEOUT_MS,
  type PeerAnswer,
  type Peers,
} from '../../src/cluster/peer-queries';
import type { EngineConfig } from '../../src/config/types';
import type { Json } from '../../src/protocol/messages';
import { startCluster, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * Node-to-node queries (cluster/peer-queries.ts) between in-process nodes over a private Redis:
 * `ModuleHost.peers` answers and asks; every live peer is one entry, settled by its answer, its
 * error, the timeout, or its leaving the cluster, never a hang.
 */

let redis: TestRedis;
const engines: TestEngine[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

async function cluster(count: number, overrides: Partial<EngineConfig> = {}): Promise<TestEngine[]> {
  const { nodes } = await startCluster(count, redis.url, overrides);
  engines.push(...nodes);
  // Each node sees the others on their next heartbeat.
  await waitFor(() => nodes.every((n) => n.engine.cluster!.nodeCount === count), `${count} nodes in the membership`);
  return nodes;
}

function peers(node: TestEngine): Peers {
  return node.engine.peers!;
}

const byNode = (answers: PeerAnswer[]) => [...answers].sort((a, b) => a.nodeId.localeCompare(b.nodeId));

test('every live peer answers, itself not included; the handler sees the input and the asking node', async () => {
  const [a, b, c] = await cluster(3);
  for (const node of [a!, b!, c!])
    peers(node).answer('test.echo', (input, from) => ({ node: node.engine.nodeId, from, input }));
  const answers = await peers(a!).askAll('test.echo', { n: 7 });
  expect(byNode(answers)).toEqual([
    { nodeId: 'node-2', result: { node: 'node-2', from: 'node-1', input: { n: 7 } } },
    { nodeId: 'node-3', result: { node: 'node-3', from: 'node-1', input: { n: 7 } } },
  ]);
  // A handler may be async and answer null.
  peers(b!).answer('test.async', async () => null);
  peers(c!).answer('test.async', async () => 'late but fine');
  expect(byNode(await peers(a!).askAll('test.async', null))).toEqual([
    { nodeId: 'node-2', result: null },
    { nodeId: 'node-3', result: 'late but fine' },
  ]);
});

test('a query a peer has no handler for is an error entry (NOT_FOUND); a handler that throws answers its error', async () => {
  const [a, b, c] = await cluster(3);
  peers(b!).answer('test.partial', () => 'here');
  peers(c!).answer('test.thrower', () => {
    throw new Error('boom');
  });
  expect(byNode(await peers(a!).askAll('test.partial', {}))).toEqual([
    { nodeId: 'node-2', result: 'here' },
    { nodeId: 'node-3', error: { code: 'NOT_FOUND', message: 'Node node-3 answers no query named test.partial' } },
  ]);
  const thrown = byNode(await peers(a!).askAll('test.thrower', {}));
  expect(thrown[0]).toMatchObject({ nodeId: 'node-2', error: { code: 'NOT_FOUND' } });
  expect(thrown[1]).toMatchObject({ nodeId: 'node-3', error: { message: 'boom' } });
});

test('a peer that does not answer within the timeout is an error entry at the timeout, the others answer meanwhile', async () => {
  const [a, b, c] = await cluster(3);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  peers(b!).answer('test.slow', () => 'quick');
  peers(c!).answer('test.slow', async () => {
    await held;
    return 'too late';
  });
  try {
    let started = performance.now();
    const answers = byNode(await peers(a!).askAll('test.slow', {}, 300));
    const elapsed = performance.now() - started;
    expect(answers).toEqual([
      { nodeId: 'node-2', result: 'quick' },
      {
        nodeId: 'node-3',
        error: { code: 'invocation_timeout', message: 'Node node-3 did not answer query test.slow within 300 ms' },
      },
    ]);
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(1500);
    // The default timeout is about a second.
    started = performance.now();
    const again = byNode(await peers(a!).askAll('test.slow', {}));
    expect(again[1]).toMatchObject({ error: { code: 'invocation_timeout' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(DEFAULT_QUERY_TIMEOUT_MS - 5);
    expect(DEFAULT_QUERY_TIMEOUT_MS).toBe(1000);
  } finally {
    release();
  }
  // The late answers are dropped: nothing is left waiting.
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(a!.engine.cluster!.pendingQueries).toBe(0);
});

test('a peer that leaves the cluster while asked is an error entry at once, and is not asked again', async () => {
  const [a, b, c] = await cluster(3);
  peers(b!).answer('test.hold', () => 'b');
  const entered = new Promise<void>((resolve) =>
    peers(c!).answer('test.hold', () => (resolve(), new Promise<Json>(() => undefined))),
  );
  const started = performance.now();
  const asked = peers(a!).askAll('test.hold', {}, 10_000);
  await entered;
  await c!.close();
  engines.splice(engines.indexOf(c!), 1);
  const answers = byNode(await asked);
  expect(performance.now() - started).toBeLessThan(5000);
  expect(answers).toEqual([
    { nodeId: 'node-2', result: 'b' },
    {
      nodeId: 'node-3',
      error: { code: 'invocation_stopped', message: 'Node node-3 left the cluster before it answered' },
    },
  ]);
  expect(await peers(a!).askAll('test.hold', {})).toEqual([{ nodeId: 'node-2', result: 'b' }]);
});

test('an answer larger than max_message_bytes (4096 here) is replaced by payload_too_large; a smaller one passes', async () => {
  const limits = { ...testConfig().limits, maxMessageBytes: 4096 };
  const [a, b] = await cluster(2, { limits });
  peers(b!).answer('test.big', (input) => 'x'.repeat((input as { size: number }).size));
  const big = await peers(a!).askAll('test.big', { size: 5000 });
  expect(big).toEqual([
    {
      nodeId: 'node-2',
      error: {
        code: 'payload_too_large',
        message:
          'The answer of node node-2 to query test.big is 5002 bytes; at most 4096 cross the bus (max_message_bytes)',
      },
    },
  ]);
  expect(await peers(a!).askAll('test.big', { size: 4000 })).toEqual([{ nodeId: 'node-2', result: 'x'.repeat(4000) }]);
});

test(`bad names and timeouts are refused with a clear error; at most ${MAX_PENDING_QUERIES} queries wait at once`, async () => {
  const [a, b] = await cluster(2);
  const p = peers(a!);
  await expect(p.askAll('', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });
  await expect(p.askAll('has space', {})).rejects.toThrow(/query name/);
  expect(() => p.answer('x'.repeat(129), () => null)).toThrow(/query name/);
  await expect(p.askAll('test.t', {}, 0)).rejects.toThrow(`from 1 to ${MAX_QUERY_TIMEOUT_MS}, got 0`);
  await expect(p.askAll('test.t', {}, MAX_QUERY_TIMEOUT_MS + 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });

  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  peers(b!).answer('test.wait', async () => {
    await held;
    return 'done';
  });
  const waiting = Array.from({ length: MAX_PENDING_QUERIES }, () => p.askAll('test.wait', {}, 5000));
  await expect(p.askAll('test.wait', {})).rejects.toMatchObject({
    code: 'limit_exceeded',
    message: expect.stringContaining(`the limit is ${MAX_PENDING_QUERIES} (MAX_PENDING_QUERIES)`),
  });
  release();
  const answers = await Promise.all(waiting);
  expect(answers.every((list) => list.length === 1 && 'result' in list[0]! && list[0].result === 'done')).toBe(true);
  // Room again.
  expect(a!.engine.cluster!.pendingQueries).toBe(0);
  expect(await p.askAll('test.wait', {})).toEqual([{ nodeId: 'node-2', result: 'done' }]);
});

test("outside cluster mode a module has no peers; engine::traces::tree with scope 'cluster' is this node alone", async () => {
  const single = await startEngine();
  engines.push(single);
  expect(single.engine.peers).toBeUndefined();
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  await single.engine.invoke({
    functionId: 'engine::health::check',
    data: {},
    traceparent: `00-${traceId}-b7ad6b7169203331-01`,
  });
  const tree = (
    await single.engine.invoke({ functionId: 'engine::traces::tree', data: { trace_id: traceId, scope: 'cluster' } })
  ).result as { roots: Array<{ name: string; node: string }>; nodes: string[]; missing_nodes: unknown[] };
  expect(tree).toMatchObject({ scope: 'cluster', nodes: ['test-node'], missing_nodes: [] });
  expect(tree.roots.map((r) => [r.name, r.node])).toEqual([['engine::health::check', 'test-node']]);
});
