import { EventEmitter } from 'node:events';
import type { ClusterNode } from '../../src/cluster/cluster-node';
import { Drain } from '../../src/engine/drain';
import type { WorkerSession } from '../../src/engine/worker-session';
import { silentLogger } from '../../src/observability/logger';
import { EngineMetrics } from '../../src/observability/metrics';
import { encode } from '../../src/protocol/codec';
import type { InvokeFunction } from '../../src/protocol/messages';
import { Registry } from '../../src/registry/registry';
import { Router, type RemoteInvoke } from '../../src/router/router';

/**
 * The drain and hand-over of one node, on a real registry and router: the other node is a
 * recording `remote`, the cluster a recording `send`, the worker sessions stand-ins with a socket
 * that closes when told.
 */

const NODE = 'a';
const OTHER = 'b';

/** A worker session as the drain sees it: its socket closes (readyState 3) when the test says. */
function session(id: string) {
  const socket = Object.assign(new EventEmitter(), { readyState: 1, CLOSED: 3 });
  const accepted: InvokeFunction[] = [];
  const fake = {
    id,
    activeInvocations: 0,
    accepted,
    connection: {
      socket,
      closing: false,
      reattachToken: `token-${id}`,
      close: () => {
        fake.connection.closing = true;
      },
    },
    cleanup: async () => undefined,
    acceptCall: (call: InvokeFunction) => accepted.push(call),
    /** The worker answered our close frame. */
    closed: () => {
      socket.readyState = 3;
      socket.emit('close');
    },
  };
  return fake;
}

function node(inCluster = true) {
  const registry = new Registry();
  const sessions = new Map<string, WorkerSession>();
  const remote: Array<[string, RemoteInvoke]> = [];
  const sent: Array<[string, unknown]> = [];
  let drain: Drain | undefined;
  const router = new Router({
    registry,
    nodeId: NODE,
    defaultTimeoutMs: 5000,
    worker: (id) => drain!.target(id),
    httpInvoke: () => Promise.reject(new Error('no http functions here')),
    remote: async (nodeId, message) => void remote.push([nodeId, message]),
  });
  const metrics = new EngineMetrics(() => router.pending.size, { node: NODE });
  const cluster = (
    inCluster ? { send: async (to: string, message: unknown) => void sent.push([to, message]) } : undefined
  ) as ClusterNode | undefined;
  drain = new Drain({ nodeId: NODE, registry, router, cluster, metrics, logger: silentLogger, sessions });
  const add = (s: ReturnType<typeof session>, nodeId = NODE) => {
    registry.apply({
      op: 'worker.put',
      worker: { id: s.id, nodeId, kind: 'worker', runtime: 'node', connectedAtMs: Date.now() },
    });
    registry.apply({ op: 'function.put', fn: { id: 'work', workerId: s.id, nodeId } });
    if (nodeId === NODE) sessions.set(s.id, s as unknown as WorkerSession);
  };
  const failed = async (reason: string) =>
    (await metrics.drainFailedCalls.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { registry, router, sessions, remote, sent, drain, add, failed };
}

test('outside a drain the router reaches the session itself; a single node never diverts', () => {
  const n = node(false);
  const w = session('w1');
  n.add(w);
  expect(n.drain.target('w1')).toBe(w);
  n.drain.begin();
  expect(n.drain.target('w1')).toBe(w);
});

test('a call for a draining worker is parked, then forwarded to the node that serves the function next, and answered from there', async () => {
  const n = node();
  const w = session('w1');
  w.activeInvocations = 1; // busy: the drain keeps its socket open
  n.add(w);
  n.drain.begin();
  const call = n.router.invoke({ functionId: 'work', data: { n: 1 } });
  await new Promise((r) => setImmediate(r));
  expect(n.remote).toEqual([]);

  n.add(session('w2'), OTHER);
  const run = n.drain.run(performance.now() + 2000, 2000);
  await waitUntil(() => n.remote.length === 1);
  const [to, message] = n.remote[0];
  expect([to, message.functionId, message.workerId, message.data]).toEqual([OTHER, 'work', 'w2', { n: 1 }]);
  n.router.pending.resolve(message.id, { result: 42 });
  await expect(call).resolves.toEqual({ result: 42 });

  w.activeInvocations = 0;
  await waitUntil(() => w.connection.closing);
  w.closed();
  n.sessions.delete('w1');
  expect(n.drain.keepsDeparted(w as unknown as WorkerSession)).toBe(true);
  await expect(run).resolves.toEqual({ settled: true, failed: 0 });
});

test('a parked call whose function is served nowhere else fails with invocation_stopped at the end of the grace, and is counted', async () => {
  const n = node();
  const w = session('w1');
  n.add(w);
  n.drain.begin();
  expect(n.drain.target('w1')).not.toBe(w);
  // The worker left (the drain closed it idle): its entries stay, calls for it are parked.
  const run = n.drain.run(performance.now() + 300, 300);
  await waitUntil(() => w.connection.closing);
  w.closed();
  n.sessions.delete('w1');
  expect(n.drain.keepsDeparted(w as unknown as WorkerSession)).toBe(true);
  const call = n.router.invoke({ functionId: 'work', data: null });
  await expect(call).rejects.toMatchObject({ code: 'invocation_stopped' });
  await expect(run).resolves.toMatchObject({ settled: false });
  expect(await n.failed('no_target')).toBe(1);
  expect(n.registry.pool('work')).toEqual([]);
});

test("a call that crossed the close frame is handed to the worker's next node only with the right reattach token", async () => {
  const n = node();
  const w = session('w1');
  n.add(w);
  const run = n.drain.run(performance.now() + 3000, 3000);
  await waitUntil(() => w.connection.closing);
  const late: InvokeFunction = {
    type: 'invokefunction',
    invocation_id: '6f1c2a1e-4b7d-4c3e-9a55-0d2f3b4c5d6e',
    function_id: 'other::fn',
    data: { x: 1 },
  };
  n.drain.lateFrame(w as unknown as WorkerSession, Buffer.from(encode(late)), false);

  n.drain.handOverOrphans('w1', 'not-the-token', OTHER, 'w1-again');
  expect(n.sent).toEqual([]);
  n.drain.handOverOrphans('w1', 'token-w1', OTHER, 'w1-again');
  expect(n.sent).toEqual([[OTHER, { type: 'reattach.calls', workerId: 'w1-again', calls: [late] }]]);
  // Handed over once: a second claim finds nothing.
  n.drain.handOverOrphans('w1', 'token-w1', OTHER, 'w1-again');
  expect(n.sent).toHaveLength(1);

  w.closed();
  n.sessions.delete('w1');
  await expect(run).resolves.toEqual({ settled: true, failed: 0 });
  expect(await n.failed('unclaimed')).toBe(0);
});

test("calls handed over by another node are made as the new connection's own", () => {
  const n = node();
  const w = session('w9');
  n.add(w);
  const call: InvokeFunction = {
    type: 'invokefunction',
    invocation_id: '7a2d3b4c-5e6f-4a1b-8c9d-0e1f2a3b4c5d',
    function_id: 'f',
    data: null,
  };
  n.drain.takeOverCalls('w9', [call]);
  n.drain.takeOverCalls('gone', [call]);
  expect(w.accepted).toEqual([call]);
});

async function waitUntil(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
