import type { IIIClient } from 'iii-sdk';
import { CronModule } from '../../src/modules/cron';
import { MemoryCronLock } from '../../src/modules/cron/adapters/memory-lock';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';
import { failure } from '../support/calls';

/**
 * The `cron` trigger type (iii-modules.md §7), driven by real iii-sdk workers: every-second
 * schedules, so each test waits a second or two for ticks.
 */

interface CronPayload {
  trigger: string;
  job_id: string;
  scheduled_time: string;
  actual_time: string;
}

interface Call {
  payload: CronPayload;
  metadata: unknown;
}

const EVERY_SECOND = '*/1 * * * * *';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Registers `functionId` recording its calls, and a cron binding to it. */
function cronFunction(
  worker: IIIClient,
  functionId: string,
  handler: (payload: CronPayload) => Promise<unknown> = async () => null,
) {
  const calls: Call[] = [];
  worker.registerFunction(functionId, async (payload: CronPayload, metadata?: unknown) => {
    calls.push({ payload, metadata });
    return handler(payload);
  });
  return calls;
}

function bindingOf(t: TestEngine, functionId: string) {
  return [...t.engine.registry.triggers()].find((b) => b.function_id === functionId);
}

describe('cron trigger type', () => {
  let t: TestEngine;
  let worker: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    worker = t.worker('cron-tests');
  });
  afterAll(async () => {
    await t.close();
  });

  test('an every-second cron fires with {trigger, job_id, scheduled_time, actual_time} and the binding metadata', async () => {
    const calls = cronFunction(worker, 'cron::tick');
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::tick',
      config: { expression: EVERY_SECOND },
      metadata: { team: 'ops' },
    });
    await waitFor(() => calls.length >= 2, 'two ticks');
    const binding = bindingOf(t, 'cron::tick');
    // Single node (memory lock): engine::cron::jobs names this node as the one that fired the last tick.
    const jobs = (await worker.trigger({ function_id: 'engine::cron::jobs', payload: {} })) as {
      jobs: Array<{ function_id: string; last_fired_node: string | null; last_fired_at_ms: number | null }>;
      node_id: string;
    };
    const job = jobs.jobs.find((j) => j.function_id === 'cron::tick');
    expect(job?.last_fired_node).toBe(jobs.node_id);
    expect(job?.last_fired_at_ms).toBeGreaterThanOrEqual(Date.parse(calls[1].payload.scheduled_time));
    trigger.unregister();
    const [first, second] = calls;
    expect(Object.keys(first.payload).sort()).toEqual(['actual_time', 'job_id', 'scheduled_time', 'trigger']);
    expect(first.payload.trigger).toBe('cron');
    expect(first.payload.job_id).toBe(binding?.id);
    expect(first.payload.job_id).toBe(second.payload.job_id);
    expect(first.payload.scheduled_time).toMatch(ISO_UTC);
    expect(first.payload.actual_time).toMatch(ISO_UTC);
    // Ticks are on whole seconds (one apart, unless a slow machine made a run miss one); a run
    // starts at or after its tick.
    expect(first.payload.scheduled_time).toMatch(/\.000Z$/);
    const gap = Date.parse(second.payload.scheduled_time) - Date.parse(first.payload.scheduled_time);
    expect(gap).toBeGreaterThanOrEqual(1000);
    expect(gap % 1000).toBe(0);
    expect(Date.parse(first.payload.actual_time)).toBeGreaterThanOrEqual(Date.parse(first.payload.scheduled_time));
    expect(first.metadata).toEqual({ team: 'ops' });
  });

  test('a handler slower than the schedule never overlaps itself; missed ticks are skipped', async () => {
    let running = 0;
    let maxRunning = 0;
    const ends: number[] = [];
    const calls = cronFunction(worker, 'cron::slow', async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(1500);
      running--;
      ends.push(Date.now());
      return null;
    });
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::slow',
      config: { expression: EVERY_SECOND },
    });
    await waitFor(() => calls.length >= 2, 'two slow runs to start', 10_000);
    trigger.unregister();
    expect(maxRunning).toBe(1);
    const [first, second] = calls.map((c) => Date.parse(c.payload.scheduled_time));
    // The second run is the first tick after the first run returned: ticks in between are skipped.
    expect(second - first).toBeGreaterThanOrEqual(2000);
    expect(second).toBeGreaterThan(ends[0]);
  });

  test('unregistering the trigger stops the job', async () => {
    const calls = cronFunction(worker, 'cron::stopped');
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::stopped',
      config: { expression: EVERY_SECOND },
    });
    await waitFor(() => calls.length >= 1, 'a first tick');
    trigger.unregister();
    await waitFor(() => !bindingOf(t, 'cron::stopped'), 'the binding to go');
    await sleep(200);
    const seen = calls.length;
    await sleep(1500);
    expect(calls.length).toBe(seen);
  });

  test('a handler error is logged and the job keeps its schedule (no retry of the failed tick)', async () => {
    const calls = cronFunction(worker, 'cron::failing', async () => {
      throw new Error('boom');
    });
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::failing',
      config: { expression: EVERY_SECOND },
    });
    await waitFor(() => calls.length >= 2, 'two ticks despite the errors');
    trigger.unregister();
    const times = calls.map((c) => c.payload.scheduled_time);
    expect(new Set(times).size).toBe(times.length);
  });

  test('condition_function_id: false skips the handler, anything else runs it; the condition sees the payload', async () => {
    const conditionPayloads: CronPayload[] = [];
    worker.registerFunction('cron::deny', async (payload: CronPayload) => {
      conditionPayloads.push(payload);
      return false;
    });
    worker.registerFunction('cron::allow', async () => null);
    const denied = cronFunction(worker, 'cron::denied');
    const allowed = cronFunction(worker, 'cron::allowed');
    await functionRegistered(t.engine, 'cron::allow');
    const a = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::denied',
      config: { expression: EVERY_SECOND, condition_function_id: 'cron::deny' },
    });
    const b = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::allowed',
      config: { expression: EVERY_SECOND, condition_function_id: 'cron::allow' },
    });
    await waitFor(() => conditionPayloads.length >= 2 && allowed.length >= 2, 'conditions evaluated on two ticks');
    a.unregister();
    b.unregister();
    expect(denied).toHaveLength(0);
    expect(conditionPayloads[0]).toMatchObject({ trigger: 'cron', scheduled_time: expect.stringMatching(ISO_UTC) });
  });

  test('a schedule years away is not fired early (timers longer than 24.8 days are taken in steps)', async () => {
    const calls = cronFunction(worker, 'cron::far');
    const trigger = worker.registerTrigger({
      type: 'cron',
      function_id: 'cron::far',
      config: { expression: '0 0 0 1 1 * 2099' },
    });
    await waitFor(() => bindingOf(t, 'cron::far')?.state === 'live', 'the binding to be live');
    await sleep(300);
    trigger.unregister();
    expect(calls).toHaveLength(0);
  });

  describe('refused bindings (trigger_registration_failed)', () => {
    async function refusal(config: unknown): Promise<{ code: string; message: string }> {
      return failure(worker, 'engine::register_trigger', { trigger_type: 'cron', function_id: 'cron::never', config });
    }

    test('a 5-field Unix expression: seconds come first', async () => {
      const err = await refusal({ expression: '* * * * *' });
      expect(err.code).toBe('trigger_registration_failed');
      expect(err.message).toContain(
        "Invalid cron expression '* * * * *': expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got 5; seconds come first",
      );
    });

    test('an invalid expression names the expression and the reason', async () => {
      expect((await refusal({ expression: '0 0 0 * * 0' })).message).toContain(
        "Invalid cron expression '0 0 0 * * 0': day-of-week value 0 is out of range 1-7 (1 = Sunday ... 7 = Saturday, or SUN-SAT)",
      );
      expect((await refusal({ expression: 'every minute' })).message).toContain(
        "Invalid cron expression 'every minute': expected 6 or 7 fields",
      );
    });

    test('a missing or empty expression: "Cron expression is required"', async () => {
      expect((await refusal({})).message).toContain('Cron expression is required');
      expect((await refusal({ expression: '' })).message).toContain('Cron expression is required');
      expect((await refusal(null)).message).toContain('Cron expression is required');
    });

    test('an expression that is not a string', async () => {
      expect((await refusal({ expression: 5 })).message).toContain('field `expression` must be a string');
    });

    test('a worker registering a bad cron is told through triggerregistrationresult, nothing is stored, and the node keeps serving', async () => {
      const logged: string[] = [];
      const spy = jest
        .spyOn(console, 'error')
        .mockImplementation((...args) => void logged.push(args.map(String).join(' ')));
      try {
        worker.registerTrigger({ type: 'cron', function_id: 'cron::unix', config: { expression: '*/5 * * * *' } });
        await waitFor(
          () => logged.some((l) => l.includes("Invalid cron expression '*/5 * * * *': expected 6 or 7 fields")),
          'the SDK to log the refusal',
        );
      } finally {
        spy.mockRestore();
      }
      expect(bindingOf(t, 'cron::unix')).toBeUndefined();
      const calls = cronFunction(worker, 'cron::after-refusal');
      const trigger = worker.registerTrigger({
        type: 'cron',
        function_id: 'cron::after-refusal',
        config: { expression: EVERY_SECOND },
      });
      await waitFor(() => calls.length >= 1, 'a valid cron to fire after the refusals');
      trigger.unregister();
    });
  });

  test('an adapter this build does not implement makes start() fail, listing the supported ones', async () => {
    await expect(new CronModule({ adapter: { name: 'nats', config: null } }).start(t.engine)).rejects.toThrow(
      "iii-cron: adapter 'nats' is not supported by this build; supported adapters: kv, redis",
    );
  });
});

describe('kv (memory) cron lock', () => {
  test('one holder per job; release frees it; other jobs are independent', async () => {
    const lock = new MemoryCronLock();
    expect(await lock.tryAcquire('job-a', 1000)).toBe(true);
    expect(await lock.tryAcquire('job-a', 1000)).toBe(false);
    expect(await lock.tryAcquire('job-b', 1000)).toBe(true);
    await lock.release('job-a', 1000);
    expect(await lock.tryAcquire('job-a', 2000)).toBe(true);
  });

  test('a lock never released expires after lock_ttl_ms', async () => {
    const lock = new MemoryCronLock(50);
    expect(await lock.tryAcquire('job', 1000)).toBe(true);
    expect(await lock.tryAcquire('job', 1000)).toBe(false);
    await sleep(80);
    expect(await lock.tryAcquire('job', 2000)).toBe(true);
  });
});
