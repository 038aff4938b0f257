import { randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { Redis } from 'ioredis';
import { bindingGroupKey } from '../../src/engine/binding-groups';
import { sleep, startEngine, waitFor, type TestEngine } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';

/**
 * Cron on a cluster: every node schedules every cron binding (the registry mirror hands each
 * binding to every node's cron module), yet each tick must fire exactly once. An every-second
 * schedule, so each test waits some seconds for ticks.
 */

const EVERY_SECOND = '* * * * * *';

interface CronPayload {
  job_id: string;
  scheduled_time: string;
}

let redis: TestRedis;
let inspector: Redis;
let keyPrefix = '';

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

/** Registers a function recording the ticks it receives. */
function recorder(worker: IIIClient, functionId: string): CronPayload[] {
  const ticks: CronPayload[] = [];
  worker.registerFunction(functionId, async (payload: CronPayload) => {
    ticks.push(payload);
    return null;
  });
  return ticks;
}

/** Scheduled times of the ticks, epoch ms, ascending. */
function times(ticks: CronPayload[]): number[] {
  return ticks.map((t) => Date.parse(t.scheduled_time)).sort((a, b) => a - b);
}

/** Every whole second from the first recorded tick to the last was fired, and none twice. */
function expectEverySecondOnce(ticks: CronPayload[]): void {
  const fired = times(ticks);
  const duplicates = fired.filter((t, i) => i > 0 && fired[i - 1] === t).map((t) => new Date(t).toISOString());
  const missing: string[] = [];
  for (let t = fired[0]; t <= fired[fired.length - 1]; t += 1000)
    if (!fired.includes(t)) missing.push(new Date(t).toISOString());
  expect({ duplicates, missing }).toEqual({ duplicates: [], missing: [] });
}

/**
 * What the cron lock of the tests' binding guards: its binding group (docs/PROTOCOL.md), the
 * same for every binding of `cron::record` every second, whatever its id (`job_id`).
 */
function lockId(jobId: string): string {
  return bindingGroupKey({
    id: jobId,
    trigger_type: 'cron',
    function_id: 'cron::record',
    config: { expression: EVERY_SECOND },
  });
}

/** The node that claimed the job's latest tick: the lease holder, unless it has just died. */
async function lastClaimant(jobId: string): Promise<string | null> {
  return inspector.hget(`${keyPrefix}cron:tick:{${lockId(jobId)}}`, 'by');
}

describe('cron on three in-process nodes', () => {
  const engines: TestEngine[] = [];
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
  });

  it('a binding every node schedules fires once per tick, with no tick missed', async () => {
    const nodes = await Promise.all(
      [1, 2, 3].map((i) => startEngine({ nodeId: `node-${i}`, cluster: { redisUrl: redis.url, keyPrefix } })),
    );
    engines.push(...nodes);
    const worker = nodes[0].worker('cron-worker');
    const ticks = recorder(worker, 'cron::record');
    await waitFor(
      () => nodes.every((n) => n.engine.registry.pool('cron::record').length === 1),
      'the function mirrored on every node',
    );
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::record',
      config: { expression: EVERY_SECOND },
    });
    const onEveryNode = () =>
      nodes.every((n) => [...n.engine.registry.triggers()].some((t) => t.function_id === 'cron::record'));
    await waitFor(onEveryNode, 'the binding on every node');
    await waitFor(() => ticks.length >= 4, 'four ticks', 10_000);
    // engine::cron::jobs on every node names the same node and time for the last tick (the
    // tick key in Redis), whichever node this caller is on. Ticks keep coming, so retry until
    // the three answers are taken between two ticks.
    const callers = nodes.map((n, i) => n.worker(`jobs-caller-${i}`));
    const lastTicks = await waitFor(async () => {
      const answers = await Promise.all(
        callers.map(async (c) => {
          const r = (await c.trigger({ function_id: 'engine::cron::jobs', payload: {} })) as {
            jobs: Array<{ function_id: string; last_fired_node: string | null; last_fired_at_ms: number | null }>;
          };
          const job = r.jobs.find((j) => j.function_id === 'cron::record');
          return job && { node: job.last_fired_node, at: job.last_fired_at_ms };
        }),
      );
      const same = answers.every((a) => a && a.node && a.at && a.node === answers[0]!.node && a.at === answers[0]!.at);
      return same ? answers[0]! : undefined;
    }, 'the same last tick from every node');
    expect(['node-1', 'node-2', 'node-3']).toContain(lastTicks.node);
    // The claim precedes the call: that tick reaches the recorder soon after.
    await waitFor(() => times(ticks).includes(lastTicks.at!), 'the last tick recorded');
    await Promise.all(callers.map((c) => c.shutdown()));
    trigger.unregister();
    await waitFor(
      () => nodes.every((n) => ![...n.engine.registry.triggers()].some((t) => t.function_id === 'cron::record')),
      'the binding gone everywhere',
    );
    // A run claimed just before the removal may still be on its way.
    await sleep(300);
    expectEverySecondOnce(ticks);
    expect(['node-1', 'node-2', 'node-3']).toContain(await lastClaimant(ticks[0].job_id));
  }, 30_000);
});

describe('cron on three engine processes', () => {
  let nodes: NodeProcess[] = [];
  const clients: IIIClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    nodes = [];
  });

  it('every second fires exactly once, also across a kill -9 of the lease holder', async () => {
    nodes = await Promise.all(
      [1, 2, 3].map((i) => startNodeProcess({ nodeId: `node-${i}`, redisUrl: redis.url, keyPrefix })),
    );
    const worker = registerWorker(nodes[0].url, {
      workerName: 'cron-worker',
      enableMetricsReporting: false,
      otel: { enabled: false },
    });
    clients.push(worker);
    const ticks = recorder(worker, 'cron::record');
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::record',
      config: { expression: EVERY_SECOND },
    });
    await waitFor(() => ticks.length >= 3, 'three ticks', 15_000);
    const jobId = ticks[0].job_id;

    // The worker's node must survive (the binding is its worker's). If it holds the lease, take
    // the lease away so that the next tick elects a leader afresh, until another node leads.
    let leader = await lastClaimant(jobId);
    for (let round = 0; leader === 'node-1' && round < 10; round++) {
      await inspector.del(`${keyPrefix}cron:lease:{${lockId(jobId)}}`);
      const seen = ticks.length;
      await waitFor(() => ticks.length >= seen + 2, 'two ticks after the lease was taken away', 10_000);
      leader = await lastClaimant(jobId);
    }
    const victim = nodes.find((n) => n.nodeId === leader && n !== nodes[0]) ?? nodes[1];

    // Kill it between two ticks (x.500 s), not in the middle of a run.
    await sleep(1500 - (Date.now() % 1000));
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    await waitFor(() => times(ticks).filter((t) => t > killedAt).length >= 5, 'five ticks after the kill', 20_000);
    trigger.unregister();
    await sleep(500);

    expectEverySecondOnce(ticks);
    expect(times(ticks).filter((t) => t < killedAt).length).toBeGreaterThanOrEqual(3);
    expect(await lastClaimant(jobId)).not.toBe(victim.nodeId);
    for (const node of nodes) if (node !== victim) expect(node.output()).not.toMatch(/uncaught|unhandled/i);
  }, 90_000);
});
