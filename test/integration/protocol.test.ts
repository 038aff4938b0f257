import http from 'node:http';
import WebSocket from 'ws';
import { RawClient } from '../support/raw-client';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';

const UUID = '5a8f7c1e-3b2d-4e6f-9a0b-1c2d3e4f5a6b';

describe('wire protocol edges', () => {
  let t: TestEngine;
  afterEach(async () => {
    await t.close();
  });

  describe('with default limits', () => {
    beforeEach(async () => {
      t = await startEngine();
    });

    test('a JSON ping is answered with a pong', async () => {
      const raw = await RawClient.connect(t.url);
      raw.send({ type: 'ping' });
      await expect(raw.next((m) => m.type === 'pong')).resolves.toEqual({ type: 'pong' });
      raw.close();
    });

    test('a WebSocket ping is answered with a pong carrying the same payload', async () => {
      const raw = await RawClient.connect(t.url);
      const pong = new Promise<string>((resolve) => raw.socket.once('pong', (data) => resolve(data.toString())));
      raw.socket.ping('hello');
      await expect(pong).resolves.toBe('hello');
      raw.close();
    });

    test('garbage frames are logged and skipped; the connection keeps working', async () => {
      const raw = await RawClient.connect(t.url);
      await raw.registered();
      for (const frame of [
        'not json',
        '[1,2]',
        '42',
        '{"type":"nonsense"}',
        '{"no":"type"}',
        '   ',
        '{"type":"registerfunction"}',
        '['.repeat(200) + ']'.repeat(200),
      ]) {
        raw.send(frame);
      }
      raw.send({ type: 'ping' });
      await raw.next((m) => m.type === 'pong');
      expect(raw.closed).toBeUndefined();
      expect(raw.received.filter((m) => m.type !== 'workerregistered' && m.type !== 'pong')).toEqual([]);
      raw.close();
    });

    test('a malformed invokefunction that names its invocation gets an error result', async () => {
      const raw = await RawClient.connect(t.url);
      raw.send({ type: 'invokefunction', invocation_id: UUID, data: {} });
      const reply = await raw.next((m) => m.type === 'invocationresult');
      expect(reply).toMatchObject({
        invocation_id: UUID,
        error: { code: 'invalid_message', message: expect.stringContaining('function_id') },
      });
      raw.send({
        type: 'invokefunction',
        invocation_id: UUID,
        function_id: 'x',
        data: {},
        action: { type: 'teleport' },
      });
      const second = await raw.next((m) => m.type === 'invocationresult' && m !== reply);
      expect(second).toMatchObject({
        invocation_id: UUID,
        function_id: 'x',
        error: { code: 'invalid_message', message: expect.stringContaining('action') },
      });
      raw.close();
    });

    test('an invokefunction without data is taken as null instead of being dropped', async () => {
      const worker = t.worker('w');
      worker.registerFunction('echo::raw', async (data: unknown) => ({ got: data ?? 'nothing' }));
      await functionRegistered(t.engine, 'echo::raw');
      const raw = await RawClient.connect(t.url);
      raw.send({ type: 'invokefunction', invocation_id: UUID, function_id: 'echo::raw' });
      const reply = await raw.next((m) => m.type === 'invocationresult');
      expect(reply).toMatchObject({ invocation_id: UUID, function_id: 'echo::raw', result: { got: 'nothing' } });
      raw.close();
    });

    test('a null result leaves as an invocationresult without `result`, from a worker and from a built-in', async () => {
      const worker = t.worker('w');
      worker.registerFunction('nothing::here', async () => null);
      worker.registerFunction('nothing::at-all', async () => undefined);
      await functionRegistered(t.engine, 'nothing::at-all');
      const raw = await RawClient.connect(t.url);
      const ids = ['nothing::here', 'nothing::at-all', 'state::get'].map((function_id, i) => {
        const invocation_id = UUID.slice(0, -1) + String(i);
        raw.send({ type: 'invokefunction', invocation_id, function_id, data: { scope: 'none', key: 'none' } });
        return invocation_id;
      });
      for (const id of ids) {
        const reply = await raw.next((m) => m.type === 'invocationresult' && m.invocation_id === id);
        expect(Object.keys(reply).sort()).toEqual(['function_id', 'invocation_id', 'type']);
      }
      // What the SDK makes of it: undefined, as against the original.
      await expect(
        worker.trigger({ function_id: 'state::get', payload: { scope: 'none', key: 'none' } }),
      ).resolves.toBeUndefined();
      await expect(worker.trigger({ function_id: 'nothing::here', payload: {} })).resolves.toBeUndefined();
      raw.close();
    });

    test('an enqueue without an invocation id that fails is logged, not fatal', async () => {
      const raw = await RawClient.connect(t.url);
      raw.send({ type: 'invokefunction', function_id: 'x::y', data: {}, action: { type: 'enqueue', queue: 'q' } });
      raw.send({ type: 'invokefunction', function_id: 'nobody::home', data: {} });
      raw.send({ type: 'invokefunction', function_id: 'nobody::home', data: {}, action: { type: 'void' } });
      await sleep(100);
      raw.send({ type: 'ping' });
      await raw.next((m) => m.type === 'pong');
      expect(raw.received.filter((m) => m.type === 'invocationresult')).toEqual([]);
      raw.close();
    });

    test('a binary frame holding JSON is a protocol message', async () => {
      const raw = await RawClient.connect(t.url);
      raw.socket.send(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
      await raw.next((m) => m.type === 'pong');
      raw.close();
    });

    test('a result from a worker the call was not sent to is ignored', async () => {
      const worker = t.worker('w');
      let release!: () => void;
      worker.registerFunction('slow::one', () => new Promise((resolve) => (release = () => resolve('real'))));
      await functionRegistered(t.engine, 'slow::one');
      const caller = t.worker('caller');
      const call = caller.trigger({ function_id: 'slow::one', payload: {} });
      await waitFor(() => t.engine.router.pending.size === 1, 'the call to be pending');
      const forger = await RawClient.connect(t.url);
      // The forger cannot know the engine's invocation id, but even a correct one must be refused.
      const [pendingId] = [...(t.engine.router.pending as unknown as { calls: Map<string, unknown> }).calls.keys()];
      forger.send({ type: 'invocationresult', invocation_id: pendingId, function_id: 'slow::one', result: 'forged' });
      await sleep(100);
      release();
      await expect(call).resolves.toBe('real');
      forger.close();
    });

    test('the /otel socket takes telemetry frames and is never registered as a worker', async () => {
      const received: string[] = [];
      t.engine.events.on('telemetry', (signal: string) => received.push(signal));
      const before = [...t.engine.registry.workers()].length;
      const otel = new WebSocket(`${t.url}/otel`);
      await new Promise((resolve) => otel.once('open', resolve));
      otel.send(Buffer.concat([Buffer.from('OTLP'), Buffer.from('{"resourceSpans":[]}')]));
      otel.send(Buffer.concat([Buffer.from('LOGS'), Buffer.from('{}')]));
      otel.send('{"type":"ping"}');
      await waitFor(() => received.length === 2, 'two telemetry frames');
      expect(received).toEqual(['OTLP', 'LOGS']);
      expect([...t.engine.registry.workers()].length).toBe(before);
      otel.terminate();
    });

    test('an SDK worker with OpenTelemetry on connects its /otel socket without disturbing calls', async () => {
      const signals: string[] = [];
      t.engine.events.on('telemetry', (signal: string) => signals.push(signal));
      const worker = t.worker('otel-on', { otel: { enabled: true }, enableMetricsReporting: true });
      worker.registerFunction('otel::echo', async (data: unknown) => data);
      await functionRegistered(t.engine, 'otel::echo');
      await expect(worker.trigger({ function_id: 'otel::echo', payload: { a: 1 } })).resolves.toMatchObject({ a: 1 });
    });

    test('other paths on the worker port answer 404', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        http.get(`http://127.0.0.1:${t.engine.port}/nope`, (res) => resolve(res.statusCode ?? 0)).on('error', reject);
      });
      expect(status).toBe(404);
      const upgrade = new WebSocket(`${t.url}/elsewhere`);
      await expect(
        new Promise((resolve, reject) => {
          upgrade.once('unexpected-response', (_req, res) => resolve(res.statusCode));
          upgrade.once('open', () => reject(new Error('upgraded')));
        }),
      ).resolves.toBe(404);
    });
  });

  describe('limits', () => {
    test('a message over max_message_bytes closes that socket with 1009; others are unaffected', async () => {
      t = await startEngine({ limits: { ...testConfig().limits, maxMessageBytes: 64 * 1024 } });
      const big = await RawClient.connect(t.url);
      const other = await RawClient.connect(t.url);
      big.send({ type: 'ping', pad: 'x'.repeat(100 * 1024) });
      await expect(big.waitClosed()).resolves.toMatchObject({ code: 1009 });
      other.send({ type: 'ping' });
      await other.next((m) => m.type === 'pong');
      other.close();
    });

    test('calls beyond max_pending_calls_per_worker are refused with limit_exceeded', async () => {
      t = await startEngine({ limits: { ...testConfig().limits, maxPendingCallsPerWorker: 3 } });
      const worker = t.worker('w');
      worker.registerFunction('hang::x', () => new Promise(() => undefined));
      await functionRegistered(t.engine, 'hang::x');
      const raw = await RawClient.connect(t.url);
      const ids = ['1', '2', '3', '4'].map((n) => `00000000-0000-4000-8000-00000000000${n}`);
      for (const id of ids) raw.send({ type: 'invokefunction', invocation_id: id, function_id: 'hang::x', data: {} });
      const refused = await raw.next((m) => m.type === 'invocationresult');
      expect(refused).toMatchObject({ invocation_id: ids[3], error: { code: 'limit_exceeded' } });
      raw.close();
    });

    test('a socket that stops reading is closed once its send queue passes the limit; others go on', async () => {
      t = await startEngine({ limits: { ...testConfig().limits, maxSendQueueBytes: 1024 * 1024 } });
      const stalled = await RawClient.connect(t.url);
      const { worker_id } = await stalled.registered();
      stalled.send({ type: 'registerfunction', id: 'stalled::sink' });
      await functionRegistered(t.engine, 'stalled::sink');
      stalled.socket.pause();
      const caller = t.worker('caller');
      const pad = 'y'.repeat(256 * 1024);
      const calls = Array.from({ length: 200 }, () =>
        caller.trigger({ function_id: 'stalled::sink', payload: { pad } }).catch((e: unknown) => e),
      );
      await waitFor(() => !t.engine.session(worker_id), 'the stalled socket to be closed', 10_000);
      const outcomes = await Promise.all(calls);
      expect(
        outcomes.every((e) =>
          ['invocation_stopped', 'channel_send_failed', 'function_not_found'].includes((e as { code: string }).code),
        ),
      ).toBe(true);
      const healthy = t.worker('healthy');
      healthy.registerFunction('ok::fn', async () => 'fine');
      await functionRegistered(t.engine, 'ok::fn');
      await expect(caller.trigger({ function_id: 'ok::fn', payload: {} })).resolves.toBe('fine');
      stalled.close();
    });
  });
});
