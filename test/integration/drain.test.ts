import { RawClient } from '../support/raw-client';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';

/** A promise the test settles by hand: the "slow" part of a function under test. */
function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

async function readyz(
  t: TestEngine,
): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const response = await fetch(`http://127.0.0.1:${t.engine.metricsPort}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as { status: string; checks: Record<string, string> },
  };
}

describe('graceful drain (engine.stop)', () => {
  let t: TestEngine;
  afterEach(async () => {
    await t.close();
  });

  test('a call in flight when the drain begins completes with its result, then the socket closes with 1012', async () => {
    t = await startEngine({ drainGraceMs: 5000 });
    // A bare worker, so the test sees exactly when the call arrives and which close code ends it.
    const server = await RawClient.connect(t.url);
    await server.registered();
    server.send({ type: 'registerfunction', id: 'drain::slow' });
    await functionRegistered(t.engine, 'drain::slow');
    const call = t.worker('caller').trigger({ function_id: 'drain::slow', payload: { n: 21 } });
    const invocation = await server.next((m) => m.type === 'invokefunction');

    const stopped = t.engine.stop();
    await sleep(100);
    expect(t.engine.state).toBe('draining');
    expect(server.closed).toBeUndefined();
    server.send({
      type: 'invocationresult',
      invocation_id: invocation.invocation_id,
      function_id: 'drain::slow',
      result: { doubled: 42 },
    });
    await expect(call).resolves.toEqual({ doubled: 42 });
    await stopped;
    expect(await server.waitClosed()).toEqual({ code: 1012, reason: 'engine shutting down' });
  });

  test('/readyz answers 503 "draining" as soon as the drain begins, /healthz stays 200', async () => {
    t = await startEngine({ drainGraceMs: 5000 });
    const slow = gate();
    const server = t.worker('server');
    server.registerFunction('drain::held', () => slow.promise.then(() => ({ ok: true })));
    await functionRegistered(t.engine, 'drain::held');
    const call = t.worker('caller').trigger({ function_id: 'drain::held', payload: {} });
    await waitFor(() => t.engine.router.pending.size === 1, 'the call to be pending');
    expect((await readyz(t)).status).toBe(200);

    const stopped = t.engine.stop();
    const during = await readyz(t);
    expect(during.status).toBe(503);
    expect(during.body).toEqual({ status: 'draining', checks: { state: 'draining' } });
    expect((await fetch(`http://127.0.0.1:${t.engine.metricsPort}/healthz`)).status).toBe(200);
    slow.open();
    await expect(call).resolves.toEqual({ ok: true });
    await stopped;
  });

  test('a new worker connection during the drain is refused with 503', async () => {
    t = await startEngine({ drainGraceMs: 5000 });
    const slow = gate();
    t.worker('server').registerFunction('drain::hold', () => slow.promise.then(() => ({})));
    await functionRegistered(t.engine, 'drain::hold');
    const call = t.worker('caller').trigger({ function_id: 'drain::hold', payload: {} });
    await waitFor(() => t.engine.router.pending.size === 1, 'the call to be pending');

    const stopped = t.engine.stop();
    await expect(RawClient.connect(t.url)).rejects.toThrow('Unexpected server response: 503');
    slow.open();
    await call;
    await stopped;
  });

  test('a worker still connected during the drain is served normally: its new calls are routed', async () => {
    t = await startEngine({ drainGraceMs: 5000 });
    const slow = gate();
    const server = t.worker('server');
    server.registerFunction('drain::long', () => slow.promise.then(() => ({ long: true })));
    server.registerFunction('drain::echo', async (data: unknown) => data);
    await functionRegistered(t.engine, 'drain::echo');
    const caller = t.worker('caller');
    const long = caller.trigger({ function_id: 'drain::long', payload: {} });
    await waitFor(() => t.engine.router.pending.size === 1, 'the long call to be pending');

    const stopped = t.engine.stop();
    await sleep(50);
    // The caller's socket is open (it waits on drain::long): a new call on it is served.
    await expect(caller.trigger({ function_id: 'drain::echo', payload: { during: 'drain' } })).resolves.toMatchObject({
      during: 'drain',
    });
    slow.open();
    await expect(long).resolves.toEqual({ long: true });
    await stopped;
  });

  test('a call still pending when the grace ends fails with engine_shutting_down', async () => {
    const graceMs = 300;
    t = await startEngine({ drainGraceMs: graceMs });
    t.worker('server').registerFunction('drain::forever', () => new Promise(() => undefined));
    await functionRegistered(t.engine, 'drain::forever');
    const caller = await RawClient.connect(t.url);
    await caller.registered();
    const invocationId = '00000000-0000-4000-8000-000000000001';
    caller.send({ type: 'invokefunction', invocation_id: invocationId, function_id: 'drain::forever', data: {} });
    await waitFor(() => t.engine.router.pending.size === 1, 'the call to be pending');

    const startedAt = performance.now();
    await t.engine.stop();
    const stopMs = performance.now() - startedAt;
    // The answer goes out before the close frame (1012).
    expect(await caller.next((m) => m.type === 'invocationresult')).toMatchObject({
      invocation_id: invocationId,
      error: { code: 'engine_shutting_down', message: expect.stringContaining(`drain grace (${graceMs} ms)`) },
    });
    expect(await caller.waitClosed()).toEqual({ code: 1012, reason: 'engine shutting down' });
    expect(stopMs).toBeGreaterThanOrEqual(graceMs - 5);
    expect(stopMs).toBeLessThan(graceMs + 1000);
  });

  test('a drain with nothing in flight finishes quickly, not after the grace', async () => {
    t = await startEngine({ drainGraceMs: 25_000 });
    t.worker('server').registerFunction('drain::idle', async () => ({}));
    await functionRegistered(t.engine, 'drain::idle');
    await t.worker('caller').trigger({ function_id: 'drain::idle', payload: {} });
    const raw = await RawClient.connect(t.url);
    await raw.registered();

    const startedAt = performance.now();
    await t.engine.stop();
    const stopMs = performance.now() - startedAt;
    // Measured 1-8 ms here (three sockets, every module); the bound leaves room for slow CI.
    expect(stopMs).toBeLessThan(1000);
    expect(await raw.waitClosed()).toEqual({ code: 1012, reason: 'engine shutting down' });
  });

  test('an HTTP request in flight completes; a new HTTP connection is refused', async () => {
    t = await startEngine({ drainGraceMs: 5000 });
    const slow = gate();
    let called = false;
    const server = t.worker('server');
    server.registerFunction('drain::http', async () => {
      called = true;
      await slow.promise;
      return { status_code: 200, body: { done: true } };
    });
    server.registerTrigger({
      type: 'http',
      function_id: 'drain::http',
      config: { api_path: '/drain', http_method: 'GET' },
    });
    const httpPort = t.engine.module<{ port: number } & import('../../src/engine/module').EngineModule>(
      'iii-http',
    )!.port;
    await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${httpPort}/nope`)).status === 404 &&
        [...t.engine.registry.triggers()].some((binding) => binding.function_id === 'drain::http'),
      'the route',
    );
    const inFlight = fetch(`http://127.0.0.1:${httpPort}/drain`);
    await waitFor(() => called, 'the request to reach the worker');

    const stopped = t.engine.stop();
    await sleep(50);
    await expect(fetch(`http://127.0.0.1:${httpPort}/drain`)).rejects.toThrow();
    slow.open();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    await stopped;
  });
});
