import { randomBytes, randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient, type InitOptions } from 'iii-sdk';
import { call, failure, type Any } from '../support/calls';
import { sleep, waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { RawClient } from '../support/raw-client';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * A trace made whole across the cluster (issue 15): two engine processes over a private Redis; a
 * caller on node 1 calls a function served by an iii-sdk worker on node 2 (OTel on, so it reports
 * its own spans to node 2). `engine::traces::tree` with scope 'cluster' returns both nodes' spans
 * in one tree, each with its node; with scope 'node' (the default) only the asking node's.
 */

jest.setTimeout(60_000);

let redis: TestRedis;
let nodes: NodeProcess[] = [];
const clients: IIIClient[] = [];
const raws: RawClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  nodes = await Promise.all(
    [1, 2].map((i) => startNodeProcess({ nodeId: `node-${i}`, redisUrl: redis.url, keyPrefix })),
  );
});
afterAll(async () => {
  raws.splice(0).forEach((r) => r.close());
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await redis.stop();
  await sleep(100); // the SDK logs when its /otel socket has closed: let that happen inside the run
});

function client(node: NodeProcess, name: string, options: InitOptions = {}): IIIClient {
  const c = registerWorker(node.url, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
    ...options,
  });
  clients.push(c);
  return c;
}

/** One invokefunction with a W3C traceparent, by hand, and its result. */
async function tracedCall(node: NodeProcess, functionId: string, traceparent: string): Promise<Any> {
  const raw = await RawClient.connect(node.url);
  raws.push(raw);
  const id = randomUUID();
  raw.send({ type: 'invokefunction', invocation_id: id, function_id: functionId, data: {}, traceparent });
  return raw.next((m) => m.type === 'invocationresult' && m.invocation_id === id, 10_000);
}

interface TreeSpan {
  span_id: string;
  parent_span_id?: string;
  name: string;
  node?: string;
  children: TreeSpan[];
}

function flatten(roots: TreeSpan[]): TreeSpan[] {
  return roots.flatMap((r) => [r, ...flatten(r.children)]);
}

const TRACE_ID = randomBytes(16).toString('hex');
const CALLER_SPAN = randomBytes(8).toString('hex');

test("scope 'cluster': the spans of both nodes in one tree, each with its node; scope 'node': the asking node's only", async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const worker = client(n2, 'traced-app', { otel: { enabled: true } });
  worker.registerFunction('trace::work', async () => 'worked');
  const reader1 = client(n1, 'reader-1');
  const reader2 = client(n2, 'reader-2');
  await waitFor(
    async () =>
      (await call(reader1, 'engine::functions::list', {})).functions.some((f: Any) => f.function_id === 'trace::work'),
    'trace::work mirrored on node 1',
    10_000,
  );

  const answer = await tracedCall(n1, 'trace::work', `00-${TRACE_ID}-${CALLER_SPAN}-01`);
  expect(answer.result).toBe('worked');

  // The worker's SDK exports its span to node 2 in a batch: wait until the cluster tree holds it.
  const tree = await waitFor(
    async () => {
      const out = await call(reader1, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'cluster' });
      return flatten(out.roots).some((s) => s.node === 'node-2') && out;
    },
    "node 2's span in node 1's cluster tree",
    20_000,
  );
  expect(tree.scope).toBe('cluster');
  expect(tree.nodes).toEqual(['node-1', 'node-2']);
  expect(tree.missing_nodes).toEqual([]);
  expect(tree.roots).toHaveLength(1);
  const root = tree.roots[0] as TreeSpan;
  expect(root).toMatchObject({ name: 'trace::work', parent_span_id: CALLER_SPAN, node: 'node-1' });
  // The span recorded on node 2 nests under node 1's engine span: the traceparent crossed the bus.
  expect(root.children.map((c) => [c.name, c.node, c.parent_span_id])).toEqual([
    ['execute trace::work', 'node-2', root.span_id],
  ]);
  expect(flatten(tree.roots).every((s) => s.node === 'node-1' || s.node === 'node-2')).toBe(true);

  // From node 2, the same tree.
  const fromTwo = await call(reader2, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'cluster' });
  expect(flatten(fromTwo.roots).map((s) => [s.span_id, s.node])).toEqual(
    flatten(tree.roots).map((s) => [s.span_id, s.node]),
  );

  // Scope 'node' (the default) is each node's own spans, as before: no node field, no merge.
  const own1 = await call(reader1, 'engine::traces::tree', { trace_id: TRACE_ID });
  expect(own1).toEqual({ roots: [expect.objectContaining({ span_id: root.span_id, children: [] })] });
  expect(own1.roots[0].node).toBeUndefined();
  const own2 = await call(reader2, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'node' });
  expect(own2.roots.map((s: TreeSpan) => [s.name, s.parent_span_id])).toEqual([['execute trace::work', root.span_id]]);

  // The list: with scope 'cluster' the root of the cluster only (node 2's span has its parent on node 1).
  const listed = await call(reader2, 'engine::traces::list', { trace_id: TRACE_ID, scope: 'cluster' });
  expect(listed).toMatchObject({ scope: 'cluster', nodes: ['node-1', 'node-2'], missing_nodes: [], total: 1 });
  expect(listed.spans.map((s: TreeSpan) => [s.span_id, s.node])).toEqual([[root.span_id, 'node-1']]);
  const listed2 = await call(reader2, 'engine::traces::list', { trace_id: TRACE_ID });
  expect(listed2.spans.map((s: TreeSpan) => s.name)).toEqual(['execute trace::work']);

  // Bad input gets a clear error.
  expect((await failure(reader1, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'world' })).message).toContain(
    "field `scope` must be 'node' or 'cluster'",
  );
  expect(
    (await failure(reader1, 'engine::traces::list', { scope: 'cluster', offset: 990, limit: 20 })).message,
  ).toContain("with scope 'cluster', `offset` + `limit` must be at most 1000");
  // Their spans stay on node 2; without them the next test's kill leaves no SDK reconnecting.
  await Promise.all([worker.shutdown(), reader2.shutdown()]);
});

test("a node that does not answer is named in missing_nodes, and the tree holds the others' spans", async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const reader1 = client(n1, 'reader-late');
  await waitFor(async () => (await call(reader1, 'engine::traces::list', {})).total >= 0, 'reader-late connected');
  // Killed: node 1 still counts node 2 alive for up to a heartbeat TTL (1 s), so node 2 is asked
  // and never answers (a timeout, or its loss if membership sees it first).
  await n2.kill('SIGKILL');
  const started = performance.now();
  const tree = await call(reader1, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'cluster' });
  expect(performance.now() - started).toBeLessThan(3000);
  expect(tree.nodes).toEqual(['node-1']);
  expect(tree.missing_nodes).toEqual([
    {
      node: 'node-2',
      code: expect.stringMatching(/^(invocation_timeout|invocation_stopped)$/),
      message: expect.any(String),
    },
  ]);
  expect(flatten(tree.roots).map((s) => [s.name, s.node])).toEqual([['trace::work', 'node-1']]);
  // Once membership has lost node 2, it is not asked at all.
  const later = await waitFor(
    async () => {
      const out = await call(reader1, 'engine::traces::tree', { trace_id: TRACE_ID, scope: 'cluster' });
      return out.missing_nodes.length === 0 && out;
    },
    'node 2 gone from the membership',
    10_000,
  );
  expect(later.nodes).toEqual(['node-1']);
});
