import { randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient } from 'iii-sdk';
import type { ClusterBus } from '../../src/config/types';
import { BUSES, waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';
import { TcpBalancer } from '../support/tcp-balancer';

/** Three engine processes and one Redis, as in production; workers reach them through a balancer. */
let redis: TestRedis;
let nodes: NodeProcess[] = [];
const clients: IIIClient[] = [];
let balancer: TcpBalancer | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
let keyPrefix = '';
async function startNodes(bus: ClusterBus): Promise<void> {
  keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  nodes = await Promise.all(
    [1, 2, 3].map((i) => startNodeProcess({ nodeId: `node-${i}`, redisUrl: redis.url, keyPrefix, bus })),
  );
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await balancer?.close();
  balancer = undefined;
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
});

function client(url: string, name: string): IIIClient {
  const c = registerWorker(url, { workerName: name, enableMetricsReporting: false, otel: { enabled: false } });
  clients.push(c);
  return c;
}

async function metric(node: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe.each(BUSES)('three engine processes over one Redis (%s bus)', (bus) => {
  beforeEach(() => startNodes(bus));

  it("fails a call within 2 s when the worker's node is killed, and serves again within 3 s after the worker reconnects elsewhere", async () => {
    const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // The balancer sends the worker's first connection to node 3, its reconnection elsewhere.
    balancer = new TcpBalancer([
      Number(new URL(n3.url).port),
      Number(new URL(n1.url).port),
      Number(new URL(n2.url).port),
    ]);
    const lbPort = await balancer.listen();
    const worker = client(`ws://127.0.0.1:${lbPort}`, 'echo');
    let hang = true;
    worker.registerFunction('echo', async (input: unknown) => (hang ? new Promise(() => undefined) : input));
    const caller = client(n1.url, 'caller');
    await waitFor(
      async () =>
        (
          (await caller.trigger({ function_id: 'engine::functions::list', payload: {} })) as {
            functions: { function_id: string }[];
          }
        ).functions.some((f) => f.function_id === 'echo'),
      'echo visible from node 1',
      5000,
    );

    const call = caller.trigger({ function_id: 'echo', payload: { n: 1 } }).then(
      () => undefined,
      (err: Error) => err,
    );
    await waitFor(async () => (await metric(n1, 'iii_pending_calls')) >= 1, 'the call pending on node 1');
    const killedAt = Date.now();
    await n3.kill('SIGKILL');
    const error = await call;
    expect(error?.message).toMatch(/left the cluster/);
    expect(Date.now() - killedAt).toBeLessThan(2000);

    hang = false;
    const reconnectedWithin = await waitFor(
      async () => {
        try {
          await caller.trigger({ function_id: 'echo', payload: { n: 2 }, timeoutMs: 500 });
          return Date.now() - killedAt;
        } catch {
          return undefined;
        }
      },
      'echo callable again',
      5000,
    );
    expect(reconnectedWithin).toBeLessThan(3000);
  });

  it('reports not ready while Redis is down, recovers by itself, rebuilds the registry, and no process exits', async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const worker = client(n2.url, 'echo');
    worker.registerFunction('echo', async (input: unknown) => input);
    const caller = client(n1.url, 'caller');
    const callable = () =>
      caller.trigger({ function_id: 'echo', payload: { ok: true } }).then(
        (r) => (r as { ok?: boolean }).ok === true,
        () => false,
      );
    await waitFor(callable, 'echo callable from node 1', 5000);

    await redis.stop();
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${n1.metricsPort}/readyz`)).status === 503,
      'node 1 not ready',
      5000,
    );
    expect((await fetch(`http://127.0.0.1:${n1.metricsPort}/healthz`)).status).toBe(200);
    // A registration during the outage cannot be published; it must arrive after.
    client(n2.url, 'late').registerFunction('late', async () => 'late');

    await redis.restart();
    for (const node of nodes) {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`)).status === 200,
        `${node.nodeId} ready again`,
        10_000,
      );
    }
    // Redis came back empty: the registry was rebuilt from the nodes' own entries.
    await waitFor(callable, 'echo callable again after the outage', 10_000);
    await waitFor(
      () =>
        caller.trigger({ function_id: 'late', payload: {} }).then(
          (r) => r === 'late',
          () => false,
        ),
      'the registration made during the outage',
      10_000,
    );
    const newcomer = await startNodeProcess({ nodeId: 'node-4', redisUrl: redis.url, keyPrefix, bus });
    nodes.push(newcomer);
    const viaNewcomer = client(newcomer.url, 'caller-4');
    await waitFor(
      () =>
        viaNewcomer.trigger({ function_id: 'echo', payload: { ok: true } }).then(
          (r) => (r as { ok?: boolean }).ok === true,
          () => false,
        ),
      'a node started after the outage sees the rebuilt registry',
      10_000,
    );
    for (const node of nodes) expect(node.output()).not.toMatch(/exited|uncaught|unhandled/i);
  });
});
