import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TriggerAction, registerWorker, type IIIClient } from 'iii-sdk';
import { waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startSentinel, type TestSentinel } from '../support/sentinel';

/**
 * Redis Sentinel (issue 14 #1, #3): two engine processes find their Redis through three
 * sentinels; a worker on node 2 serves a function that a caller on node 1 calls, and a producer
 * on node 1 enqueues jobs the worker handles. kill -9 of the primary under that load: no call
 * hangs past its deadline + 2 s, calls succeed again within a bound after the sentinels promote
 * a replica, no acknowledged job is lost, and the registry routes across nodes again, a function
 * registered after the failover included, without a restart.
 */

/** The engine's deadline of a call (engine.invocation_timeout_ms): the SDK's own is far longer, so it never hides a hang. */
const DEADLINE_MS = 5000;
/** No call may take longer than its deadline plus this. */
const HANG_SLACK_MS = 2000;
/** Calls must succeed again within this long of the promotion, in ms (measured here: 0.05-3 s; 3 s when calls published just before the kill run into their 5 s deadline). */
const RECOVERY_BOUND_MS = 10_000;
const CALLERS = 4;

let sentinel: TestSentinel;
let nodes: NodeProcess[] = [];
const clients: IIIClient[] = [];
let dir: string;

beforeAll(async () => {
  sentinel = await startSentinel();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iii-sentinel-failover-'));
  fs.writeFileSync(
    path.join(dir, 'config.yaml'),
    [
      'engine:',
      `  invocation_timeout_ms: ${DEADLINE_MS}`,
      'workers:',
      '  - name: iii-worker-manager',
      '  - name: http',
      '  - name: iii-stream',
      '  - name: state',
      '  - name: queue',
      '',
    ].join('\n'),
  );
}, 60_000);
afterAll(async () => {
  await sentinel?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  nodes = [];
});

function client(url: string, name: string): IIIClient {
  const c = registerWorker(url, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
    invocationTimeoutMs: 60_000,
  } as never);
  clients.push(c);
  return c;
}

async function startNodes(): Promise<void> {
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  const env = {
    III_REDIS_SENTINELS: sentinel.sentinels,
    III_REDIS_SENTINEL_NAME: sentinel.name,
    III_REDIS_KEY_PREFIX: keyPrefix,
    III_CLUSTER_BUS: 'redis',
  };
  nodes = await Promise.all(
    [1, 2].map((i) => startNodeProcess({ nodeId: `node-${i}`, cwd: dir, args: ['--config', 'config.yaml'], env })),
  );
}

interface CallRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
}

describe('engine processes in Sentinel mode', () => {
  it('kill -9 of the primary under call and queue load: no hung call, calls back within the bound, no acknowledged job lost, registry rebuilt', async () => {
    await startNodes();
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    const handled = new Set<number>();
    const worker = client(n2.url, 'echo');
    worker.registerFunction('echo', async (input: unknown) => input);
    worker.registerFunction('q::job', async (input: unknown) => {
      handled.add((input as { i: number }).i);
      return null;
    });
    const caller = client(n1.url, 'caller');
    const producer = client(n1.url, 'producer');
    await waitFor(
      () =>
        caller.trigger({ function_id: 'echo', payload: { n: 0 } }).then(
          () => true,
          () => false,
        ),
      'echo callable from node 1',
      10_000,
    );

    // Load: CALLERS loops of cross-node calls, one producer enqueueing jobs one after another.
    const calls: CallRecord[] = [];
    const acknowledged = new Set<number>();
    const refusedJobs: string[] = [];
    const ackedAt: number[] = [];
    let running = true;
    const callLoop = async () => {
      while (running) {
        const startedAt = Date.now();
        const record = await caller.trigger({ function_id: 'echo', payload: { startedAt } }).then(
          () => ({ startedAt, endedAt: Date.now(), ok: true }),
          (err: Error) => ({ startedAt, endedAt: Date.now(), ok: false, error: err.message }),
        );
        calls.push(record);
        // A failed call is retried after a short pause, as a client would, not in a tight loop.
        if (!record.ok) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    let nextJob = 0;
    const produceLoop = async () => {
      while (running) {
        const i = nextJob++;
        try {
          await producer.trigger({
            function_id: 'q::job',
            payload: { i },
            action: TriggerAction.Enqueue({ queue: 'default' }),
          });
          acknowledged.add(i);
          ackedAt.push(Date.now());
        } catch (err) {
          refusedJobs.push((err as Error).message);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const loops = [...Array.from({ length: CALLERS }, callLoop), produceLoop()];

    await new Promise((resolve) => setTimeout(resolve, 1500));
    const killedAt = Date.now();
    const oldPrimary = await sentinel.killPrimary();
    await sentinel.waitForNewPrimary(oldPrimary);
    const promotedAt = Date.now();
    // Load goes on until calls have succeeded for 3 s in a row after the promotion.
    const firstOkAfter = await waitFor(
      async () => {
        const ok = calls.find((c) => c.ok && c.startedAt > promotedAt);
        return ok !== undefined && Date.now() - ok.endedAt > 3000 ? ok : undefined;
      },
      'calls succeeding after the failover',
      RECOVERY_BOUND_MS + 10_000,
    ).catch(async (err: Error) => {
      running = false;
      const list = await caller
        .trigger({ function_id: 'engine::functions::list', payload: {} })
        .catch((e: Error) => e.message);
      const errors = [...new Set(calls.filter((c) => !c.ok && c.startedAt > promotedAt).map((c) => c.error))].slice(
        0,
        4,
      );
      throw new Error(
        `${err.message}; errors after the promotion: ${errors.join(' | ')}; node 1 lists ${JSON.stringify(list).slice(0, 600)}\nnode 1: ${n1.output().slice(-3000)}\nnode 2: ${n2.output().slice(-3000)}`,
      );
    });
    running = false;
    await Promise.all(loops);

    const longest = Math.max(...calls.map((c) => c.endedAt - c.startedAt));
    const failed = calls.filter((c) => !c.ok);
    const recoveryMs = firstOkAfter.endedAt - promotedAt;
    const afterRecovery = calls.filter((c) => c.startedAt >= firstOkAfter.endedAt);
    process.stdout.write(
      `sentinel failover: promotion ${promotedAt - killedAt} ms after the kill; first cross-node call ok ${firstOkAfter.endedAt - killedAt} ms after the kill ` +
        `(${recoveryMs} ms after the promotion); ${calls.length} calls, ${failed.length} failed (${[...new Set(failed.map((c) => c.error))].slice(0, 3).join(' | ')}), ` +
        `longest ${longest} ms; ${acknowledged.size} jobs acknowledged (${ackedAt.filter((t) => t > promotedAt).length} after the promotion), ${refusedJobs.length} enqueues refused (${[...new Set(refusedJobs)].slice(0, 2).join(' | ')}); failures at ${failed.map((c) => `${c.startedAt - promotedAt}+${c.endedAt - c.startedAt}`).join(' ')} ms from the promotion\n`,
    );
    expect(longest).toBeLessThan(DEADLINE_MS + HANG_SLACK_MS);
    // Failures are clear errors from the engine, not the SDK's own timeout.
    for (const c of failed) expect(c.error).not.toMatch(/invocation timed out after 60000ms/);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    // Once back, calls keep succeeding.
    expect(afterRecovery.filter((c) => !c.ok)).toEqual([]);

    // Every acknowledged job is handled (the failover may deliver one twice, never lose one).
    await waitFor(
      () => [...acknowledged].every((i) => handled.has(i)),
      `all ${acknowledged.size} acknowledged jobs handled`,
      30_000,
    ).catch(() => {
      throw new Error(
        `acknowledged jobs never handled: ${[...acknowledged].filter((i) => !handled.has(i)).join(', ')}`,
      );
    });

    // The registry routes across nodes again: a function registered after the failover on
    // node 2 is callable from node 1, and a fresh caller on node 2 reaches back to node 1.
    const late = client(n2.url, 'late');
    late.registerFunction('late', async () => 'late');
    let lastLateError = '';
    await waitFor(
      () =>
        caller.trigger({ function_id: 'late', payload: {} }).then(
          (r) => r === 'late',
          (err: Error) => ((lastLateError = err.message), false),
        ),
      'a function registered after the failover',
      10_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message} (last error: ${lastLateError})\nnode 1: ${n1.output().slice(-3000)}\nnode 2: ${n2.output().slice(-3000)}`,
      );
    });
    client(n1.url, 'back').registerFunction('back', async () => 'back');
    const reverse = client(n2.url, 'reverse');
    await waitFor(
      () =>
        reverse.trigger({ function_id: 'back', payload: {} }).then(
          (r) => r === 'back',
          () => false,
        ),
      'node 2 reaching a function on node 1',
      10_000,
    );

    // The old primary comes back (empty) and the sentinels make it a replica: nothing notices.
    await sentinel.restartDataNode(oldPrimary);
    for (let i = 0; i < 20; i++)
      expect(await caller.trigger({ function_id: 'echo', payload: { i } })).toMatchObject({ i });
    for (const node of nodes) {
      expect((await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`)).status).toBe(200);
      expect(node.output()).not.toMatch(/uncaught|unhandled/i);
    }
  }, 120_000);
});
