import { InvocationError, TriggerAction } from 'iii-sdk';
import { functionRegistered, testConfig, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';

describe('invocations between iii-sdk workers', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  test('a worker calls another synchronously and gets its result, with metadata passed apart from data', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('math::add', async (data: { x: number; y: number }, metadata?: unknown) => ({
      sum: data.x + data.y,
      metadata,
    }));
    await functionRegistered(t.engine, 'math::add');
    const out = await a.trigger({ function_id: 'math::add', payload: { x: 2, y: 3 }, metadata: { tenant: 't1' } });
    expect(out).toEqual({ sum: 5, metadata: { tenant: 't1' } });
  });

  test('the callee sees _caller_worker_id in object payloads', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('who::called', async (data: Record<string, unknown>) => data);
    await functionRegistered(t.engine, 'who::called');
    const callerId = await waitFor(
      () => [...t.engine.registry.workers()].find((w) => w.name === 'a')?.id,
      'worker a metadata',
    );
    const out = await a.trigger({ function_id: 'who::called', payload: { k: 1 } });
    expect(out).toEqual({ k: 1, _caller_worker_id: callerId });
  });

  test('a void call runs the target and resolves without a result', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    const seen: unknown[] = [];
    b.registerFunction('audit::log', async (data: unknown) => {
      seen.push(data);
      return { ignored: true };
    });
    await functionRegistered(t.engine, 'audit::log');
    const out = await a.trigger({
      function_id: 'audit::log',
      payload: { event: 'login' },
      action: TriggerAction.Void(),
    });
    expect(out).toBeUndefined();
    await waitFor(() => seen.length === 1, 'void call to arrive');
    expect(seen[0]).toMatchObject({ event: 'login' });
  });

  test('a handler error reaches the caller as InvocationError with code and message', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('fail::always', async () => {
      throw new Error('boom');
    });
    await functionRegistered(t.engine, 'fail::always');
    const err = await a.trigger({ function_id: 'fail::always', payload: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvocationError);
    expect(err).toMatchObject({ code: 'invocation_failed', message: expect.stringContaining('boom') });
  });

  test('a call to a missing function fails at once with function_not_found', async () => {
    const a = t.worker('a');
    const started = Date.now();
    const err = await a.trigger({ function_id: 'nobody::home', payload: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'function_not_found', message: expect.stringContaining('nobody::home') });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a handler returning null resolves undefined (result omitted, as the original)', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('nothing::here', async () => null);
    await functionRegistered(t.engine, 'nothing::here');
    await expect(a.trigger({ function_id: 'nothing::here', payload: {} })).resolves.toBeUndefined();
  });

  test('the engine-side deadline settles a call whose worker never answers', async () => {
    await t.close();
    t = await startEngine({ invocationTimeoutMs: 300 });
    const a = t.worker('a');
    const b = t.worker('b');
    b.registerFunction('slow::never', () => new Promise(() => undefined));
    await functionRegistered(t.engine, 'slow::never');
    const err = await a.trigger({ function_id: 'slow::never', payload: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invocation_timeout' });
    expect(t.engine.router.pending.size).toBe(0);
  });

  test('the enqueue action without a queue module answers enqueue_error', async () => {
    await t.close();
    const { modules } = testConfig();
    t = await startEngine({ modules: { ...modules, queue: { enabled: false, config: {} } } });
    const a = t.worker('a');
    await sleep(100);
    const err = await a
      .trigger({ function_id: 'x::y', payload: {}, action: TriggerAction.Enqueue({ queue: 'jobs' }) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'enqueue_error', message: expect.stringContaining('No queue provider') });
  });
});
