import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TriggerAction, registerWorker, type IIIClient } from 'iii-sdk';
import { Redis } from 'ioredis';
import { sleep, waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';

/**
 * Engine clustering over a Redis Cluster (issue 14 #2): two engine processes given the nodes of a
 * private three-primary Redis Cluster (III_REDIS_CLUSTER_NODES) route calls to each other over
 * sharded pub/sub inboxes, see each other in the membership, share state, deliver a job
 * enqueued on one node to a worker on the other, and fire a cron tick once between them. `CLUSTER FAILOVER` of the shard holding a node's inbox under call load: no
 * call hangs, and calls to that node succeed again within a bound.
 */

/** The engine's deadline of a call (engine.invocation_timeout_ms). */
const DEADLINE_MS = 5000;
/** No call may take longer than its deadline plus this, in ms. */
const HANG_SLACK_MS = 2000;
/** Cross-node calls must succeed again within this long of the promotion, in ms. */
const RECOVERY_BOUND_MS = 5000;

let cluster: TestRedisCluster;
let nodes: NodeProcess[] = [];
const clients: IIIClient[] = [];
let dir: string;
const keyPrefix = `t${randomUUID().slice(0, 8)}:`;

beforeAll(async () => {
  cluster = await startRedisCluster({ replicas: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-redis-cluster-engine-'));
  fs.writeFileSync(
    path.join(dir, 'config.yaml'),
    [
      'engine:',
      `  invocation_timeout_ms: ${DEADLINE_MS}`,
      'workers:',
      '  - name: iii-worker-manager',
      '  - name: state',
      '  - name: cron',
      '  - name: queue',
      '',
    ].join('\n'),
  );
  const env = { III_REDIS_CLUSTER_NODES: cluster.nodes, III_REDIS_KEY_PREFIX: keyPrefix, III_CLUSTER_BUS: 'redis' };
  nodes = await Promise.all(
    [1, 2].map((i) => startNodeProcess({ nodeId: `node-${i}`, cwd: dir, args: ['--config', 'config.yaml'], env })),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function client(node: NodeProcess, name: string): IIIClient {
  const c = registerWorker(node.url, { workerName: name, enableMetricsReporting: false, otel: { enabled: false } });
  clients.push(c);
  return c;
}

/** Calls `functionId` through `caller` until the registry on the caller's node knows it. */
async function callWhenKnown(caller: IIIClient, functionId: string, payload: unknown): Promise<unknown> {
  let last: unknown;
  return waitFor(
    async () => {
      try {
        return { value: await caller.trigger({ function_id: functionId, payload }) };
      } catch (err) {
        last = err;
        return undefined;
      }
    },
    `${functionId} callable (last error: ${String(last)})`,
    10_000,
  ).then((r) => r.value);
}

/** `count` of each running node of the cluster (a killed one counts nothing), summed. */
async function sumOverNodes(count: (node: Redis) => Promise<number>): Promise<number> {
  let total = 0;
  for (const port of cluster.ports) {
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      const up = await redis.connect().then(
        () => true,
        () => false,
      );
      if (up) total += await count(redis);
    } finally {
      redis.disconnect();
    }
  }
  return total;
}

/** `PUBSUB <kind> <channel>` over the cluster (each node answers for itself). */
const subscribers = (kind: 'SHARDNUMSUB' | 'NUMSUB', channel: string): Promise<number> =>
  sumOverNodes(async (node) => Number(((await node.call('PUBSUB', kind, channel)) as [string, number])[1]));

/** WAIT commands served so far over the cluster (INFO commandstats). */
const waitCommands = (): Promise<number> =>
  sumOverNodes(async (node) => Number(/cmdstat_wait:calls=(\d+)/.exec(await node.info('commandstats'))?.[1] ?? 0));

test('calls cross nodes both ways, large payloads included, over sharded inboxes; both nodes are members', async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const w1 = client(n1, 'one');
  const w2 = client(n2, 'two');
  w1.registerFunction('rc::one', async (input: unknown) => ({ on: 'node-1', input }));
  w2.registerFunction('rc::two', async (input: unknown) => ({ on: 'node-2', input }));

  expect(await callWhenKnown(w1, 'rc::two', { n: 1 })).toMatchObject({ on: 'node-2', input: { n: 1 } });
  expect(await callWhenKnown(w2, 'rc::one', { n: 2 })).toMatchObject({ on: 'node-1', input: { n: 2 } });
  // 100 records, about 4 KiB: the payload crosses the bus as its text (the split frame).
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `row ${i}`, tags: ['a', 'b'] }));
  expect(await w1.trigger({ function_id: 'rc::two', payload: { rows } })).toMatchObject({
    on: 'node-2',
    input: { rows },
  });

  for (const nodeId of ['node-1', 'node-2']) {
    expect(await subscribers('SHARDNUMSUB', `${keyPrefix}inbox:${nodeId}`)).toBe(1);
    expect(await subscribers('NUMSUB', `${keyPrefix}inbox:${nodeId}`)).toBe(0);
  }
  // The membership: each node sees the other on its next heartbeat.
  let seen: Array<[string, string]> = [];
  await waitFor(async () => {
    const listed = (await w1.trigger({ function_id: 'engine::cluster::nodes', payload: {} })) as {
      nodes: Array<{ node_id: string; state: string }>;
    };
    seen = listed.nodes.map((n): [string, string] => [n.node_id, n.state]).sort();
    return seen.length === 2;
  }, 'both nodes in the membership');
  expect(seen).toEqual([
    ['node-1', 'ready'],
    ['node-2', 'ready'],
  ]);
}, 60_000);

test('state written through one node is read through the other', async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const a = client(n1, 'state-a');
  const b = client(n2, 'state-b');
  await callWhenKnown(a, 'state::set', { scope: 'rc', key: 'k', value: { v: 42 } });
  expect(await b.trigger({ function_id: 'state::get', payload: { scope: 'rc', key: 'k' } })).toEqual({ v: 42 });
}, 30_000);

test('a job enqueued through one node reaches a worker on the other, once each, acknowledged once a replica has it', async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const got: number[] = [];
  const worker = client(n2, 'queue-worker');
  worker.registerFunction('rc::job', async (input: unknown) => {
    got.push((input as { i: number }).i);
    return null;
  });
  const producer = client(n1, 'queue-producer');
  await waitFor(async () => {
    const listed = (await producer.trigger({ function_id: 'engine::functions::list', payload: {} })) as {
      functions: Array<{ function_id: string }>;
    };
    return listed.functions.some((f) => f.function_id === 'rc::job');
  }, 'rc::job known on node-1');
  const waitsBefore = await waitCommands();
  for (let i = 0; i < 20; i++)
    await producer.trigger({
      function_id: 'rc::job',
      payload: { i },
      action: TriggerAction.Enqueue({ queue: 'default' }),
    });
  await waitFor(() => got.length >= 20, '20 jobs delivered', 15_000);
  expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  // Each enqueue waited for the shard's replica (WAIT 1 on the connection that wrote the job).
  expect((await waitCommands()) - waitsBefore).toBeGreaterThanOrEqual(20);
}, 40_000);

test('a cron tick fires once between the two nodes', async () => {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const fired: string[] = [];
  for (const [i, node] of [n1, n2].entries()) {
    const w = client(node, `cron-${i + 1}`);
    w.registerFunction(`rc::tick${i + 1}`, async (input: unknown) => {
      fired.push(`binding ${i + 1} at ${String((input as { scheduled_time: string }).scheduled_time)}`);
      return null;
    });
    w.registerTrigger({ type: 'cron', function_id: `rc::tick${i + 1}`, config: { expression: '* * * * * *' } });
  }
  await waitFor(() => new Set(fired).size >= 8, '4 ticks of both bindings', 15_000);
  await sleep(1500);
  // Each binding's tick is fired by one node only, whichever leads it.
  const twice = fired.filter((tick, i) => fired.indexOf(tick) !== i);
  expect(twice).toEqual([]);
}, 40_000);

interface CallRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
}

interface Run {
  records: CallRecord[];
  promotedAt: number;
  /** Jobs whose enqueue was acknowledged, and those the worker got. */
  acked: Set<number>;
  delivered: Set<number>;
}

/**
 * Four callers on node 1 call `rc::echo-<n>` on node 2, and a producer on node 1 enqueues jobs
 * for node 2's worker, while `fault` runs (it resolves once the shard's replica is primary), then
 * until a call started after that succeeds (within RECOVERY_BOUND_MS), then 1 s more.
 */
async function callsThrough(name: string, fault: () => Promise<unknown>): Promise<Run> {
  const [n1, n2] = nodes as [NodeProcess, NodeProcess];
  const worker = client(n2, `${name}-worker`);
  worker.registerFunction(`rc::echo-${name}`, async (input: unknown) => input);
  const delivered = new Set<number>();
  worker.registerFunction(`rc::job-${name}`, async (input: unknown) => {
    delivered.add((input as { i: number }).i);
    return null;
  });
  const caller = client(n1, `${name}-caller`);
  const producer = client(n1, `${name}-producer`);
  await callWhenKnown(caller, `rc::echo-${name}`, { warm: true });
  await callWhenKnown(caller, `rc::job-${name}`, { i: -1 });
  const records: CallRecord[] = [];
  let running = true;
  const acked = new Set<number>();
  const produce = async () => {
    for (let i = 0; running; i++) {
      await producer
        .trigger({
          function_id: `rc::job-${name}`,
          payload: { i },
          action: TriggerAction.Enqueue({ queue: 'default' }),
        })
        .then(
          () => acked.add(i),
          () => sleep(20),
        );
      await sleep(10);
    }
  };
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const startedAt = Date.now();
      const record = await caller.trigger({ function_id: `rc::echo-${name}`, payload: { startedAt } }).then(
        () => ({ startedAt, endedAt: Date.now(), ok: true }),
        (err: unknown) => ({ startedAt, endedAt: Date.now(), ok: false, error: String(err) }),
      );
      records.push(record);
      if (!record.ok) await sleep(20);
    }
  });
  loops.push(produce());
  try {
    await sleep(500);
    await fault();
    const promotedAt = Date.now();
    await waitFor(
      () => records.some((r) => r.ok && r.startedAt > promotedAt + 200),
      `a cross-node call started after the promotion succeeding (${name})`,
      RECOVERY_BOUND_MS,
    );
    await sleep(1000);
    return { records, promotedAt, acked, delivered };
  } finally {
    running = false;
    await Promise.all(loops);
    const failed = records.filter((r) => !r.ok);
    const longest = Math.max(...records.map((r) => r.endedAt - r.startedAt));
    console.log(
      `${name}: ${records.length} calls, ${failed.length} failed (${[...new Set(failed.map((r) => r.error))].join(' | ')}), longest ${longest} ms`,
    );
  }
}

/**
 * No call outlived its deadline by more than the slack; every call started a second after the
 * promotion succeeded; every acknowledged job is delivered (enqueues wait for the replica).
 */
async function expectRecovered({ records, promotedAt, acked, delivered }: Run): Promise<void> {
  expect(Math.max(...records.map((r) => r.endedAt - r.startedAt))).toBeLessThanOrEqual(DEADLINE_MS + HANG_SLACK_MS);
  const after = records.filter((r) => r.startedAt > promotedAt + 1000);
  expect(after.length).toBeGreaterThan(0);
  expect(after.filter((r) => !r.ok)).toEqual([]);
  expect(acked.size).toBeGreaterThan(0);
  const lost = () => [...acked].filter((i) => !delivered.has(i));
  await waitFor(() => lost().length === 0, 'every acknowledged job delivered', 15_000).catch(() => undefined);
  expect(lost()).toEqual([]);
}

test("CLUSTER FAILOVER of the shard holding a node's inbox, under call and queue load: no hung call, calls back within the bound, no acknowledged job lost", async () => {
  let ports = { oldPrimary: 0, newPrimary: 0 };
  const run = await callsThrough('failover', async () => {
    ports = await cluster.failoverShardOf(`${keyPrefix}inbox:node-2`);
  });
  await expectRecovered(run);
  expect(ports.oldPrimary).not.toBe(ports.newPrimary);
  // The inbox is on the new primary now.
  expect(await subscribers('SHARDNUMSUB', `${keyPrefix}inbox:node-2`)).toBe(1);
}, 60_000);

test("kill -9 of the primaries of a node's inbox shard and the queue's shard, under call and queue load: no hung call, calls back within the bound, no acknowledged job lost", async () => {
  const inbox = `${keyPrefix}inbox:node-2`;
  const queue = `${keyPrefix}bull:{default}`;
  const run = await callsThrough('kill', async () => {
    // The shard of the calls' way, and the queue's shard if it is another one.
    const same = (await cluster.primaryOf(inbox)) === (await cluster.primaryOf(queue));
    await cluster.killPrimaryOf(inbox);
    if (!same) await cluster.killPrimaryOf(queue);
  });
  await expectRecovered(run);
  expect(await subscribers('SHARDNUMSUB', `${keyPrefix}inbox:node-2`)).toBe(1);
}, 60_000);
