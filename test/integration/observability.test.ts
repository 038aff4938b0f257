import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { ObservabilityModule } from '../../src/modules/observability';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { OtlpCollector } from '../support/otlp-collector';
import { RawClient } from '../support/raw-client';
import { call, failure, type Any } from '../support/calls';

/**
 * iii-observability (iii-modules.md §11): a span per call (OTLP gRPC and the memory ring),
 * traceparent/baggage propagation, logs, log/trace triggers, SDK telemetry frames, bounded rings.
 */

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const CALLER_TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

/** An engine whose iii-observability block is `config` (every other module as by default). */
function startWith(config: Record<string, unknown>): Promise<TestEngine> {
  const base = testConfig();
  return startEngine({ modules: { ...base.modules, observability: { enabled: true, config } } });
}

/** A raw-protocol caller: sends one invokefunction (with traceparent/baggage) and awaits its result. */
async function rawCall(
  client: RawClient,
  functionId: string,
  data: unknown,
  extra: Record<string, unknown> = {},
): Promise<Any> {
  const invocationId = randomUUID();
  client.send({ type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data, ...extra });
  return client.next((m) => m.type === 'invocationresult' && m.invocation_id === invocationId, 5000);
}

/** A binary telemetry frame: 4-byte prefix + body. */
function frame(prefix: string, body: unknown): Buffer {
  return Buffer.concat([
    Buffer.from(prefix, 'latin1'),
    Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  ]);
}

async function openTelemetrySocket(t: TestEngine): Promise<WebSocket> {
  const socket = new WebSocket(`${t.url}/otel`);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

function closeSocket(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    socket.close();
  });
}

describe('iii-observability', () => {
  describe('with the OTLP exporter', () => {
    let collector: OtlpCollector;
    let t: TestEngine;
    beforeAll(async () => {
      collector = await OtlpCollector.start();
      t = await startWith({ exporter: 'otlp', endpoint: collector.endpoint });
    });
    afterAll(async () => {
      await t.close();
      await collector.close();
    });

    test('an SDK worker call is exported over OTLP gRPC as a SERVER span under the caller traceparent', async () => {
      const w = t.worker('otlp-worker');
      w.registerFunction('otlp::echo', async (data: Any) => data);
      w.registerFunction('otlp::fail', async () => {
        throw new Error('broken on purpose');
      });
      await functionRegistered(t.engine, 'otlp::fail');
      const caller = await RawClient.connect(t.url);
      try {
        expect(await rawCall(caller, 'otlp::echo', { n: 1 }, { traceparent: CALLER_TRACEPARENT })).toMatchObject({
          result: { n: 1 },
        });
        const failed = await rawCall(caller, 'otlp::fail', {}, { traceparent: CALLER_TRACEPARENT });
        expect(failed.error).toBeDefined();

        const echo = await waitFor(
          () => collector.spans.find((s) => s.name === 'otlp::echo'),
          'the exported otlp::echo span',
          10_000,
        );
        expect(echo).toMatchObject({
          traceId: TRACE_ID,
          parentSpanId: CALLER_SPAN,
          kind: 2,
          status: { code: 1 },
          serviceName: 'iii',
        });
        expect(echo.attributes).toMatchObject({ 'iii.function.id': 'otlp::echo' });
        expect(echo.attributes['iii.worker.id']).toEqual(expect.any(String));
        expect(echo.attributes['iii.invocation.id']).toEqual(expect.any(String));

        const fail = await waitFor(
          () => collector.spans.find((s) => s.name === 'otlp::fail'),
          'the exported otlp::fail span',
          10_000,
        );
        expect(fail.status.code).toBe(2);
        expect(fail.status.message).toContain(failed.error.code);
        expect(fail.attributes['iii.error.code']).toBe(failed.error.code);
      } finally {
        caller.close();
      }
    });

    test('without an endpoint in the block, OTEL_EXPORTER_OTLP_ENDPOINT is used', async () => {
      const previous = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.endpoint;
      let envEngine: TestEngine | undefined;
      try {
        envEngine = await startWith({ exporter: 'both' });
      } finally {
        if (previous === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
        else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = previous;
      }
      try {
        const w = envEngine.worker('env-worker');
        w.registerFunction('otlp::from-env', async () => null);
        await functionRegistered(envEngine.engine, 'otlp::from-env');
        await call(w, 'otlp::from-env', {});
        await waitFor(
          () => collector.spans.some((s) => s.name === 'otlp::from-env'),
          'the span exported to the env endpoint',
          10_000,
        );
        // `both` also keeps it in memory.
        expect((await call(w, 'engine::traces::list', { name: 'otlp::from-env' })).total).toBe(1);
      } finally {
        await envEngine.close();
      }
    });

    test('engine::traces::list answers memory_exporter_not_enabled when spans only go to OTLP', async () => {
      const w = t.worker('otlp-reader');
      const err = await failure(w, 'engine::traces::list', {});
      expect(err.code).toBe('memory_exporter_not_enabled');
      expect(err.message).toContain('"memory" or "both"');
    });
  });

  describe('with the default (memory) exporter', () => {
    let t: TestEngine;
    beforeEach(async () => {
      t = await startEngine();
    });
    afterEach(async () => {
      await t.close();
    });

    test('the worker receives a traceparent of the same trace whose parent is the engine span; baggage passes unchanged', async () => {
      const worker = await RawClient.connect(t.url);
      const caller = await RawClient.connect(t.url);
      try {
        worker.send({ type: 'registerfunction', id: 'raw::target' });
        await functionRegistered(t.engine, 'raw::target');
        const callId = randomUUID();
        caller.send({
          type: 'invokefunction',
          invocation_id: callId,
          function_id: 'raw::target',
          data: {},
          traceparent: CALLER_TRACEPARENT,
          baggage: 'tenant=acme',
        });
        const invoke = await worker.next((m) => m.type === 'invokefunction');
        const [version, traceId, parentId, flags] = String(invoke.traceparent).split('-');
        expect({ version, traceId, flags, baggage: invoke.baggage }).toEqual({
          version: '00',
          traceId: TRACE_ID,
          flags: '01',
          baggage: 'tenant=acme',
        });
        expect(parentId).not.toBe(CALLER_SPAN);
        worker.send({
          type: 'invocationresult',
          invocation_id: invoke.invocation_id,
          function_id: 'raw::target',
          result: { ok: true },
        });
        const result = await caller.next((m) => m.type === 'invocationresult' && m.invocation_id === callId);
        expect(result.traceparent).toBe(CALLER_TRACEPARENT);

        const sdk = t.worker('tree-reader');
        const tree = await waitFor(async () => {
          const out = await call(sdk, 'engine::traces::tree', { trace_id: TRACE_ID });
          return out.roots.length > 0 && out;
        }, 'the trace tree');
        expect(tree.roots).toHaveLength(1);
        expect(tree.roots[0]).toMatchObject({
          span_id: parentId,
          parent_span_id: CALLER_SPAN,
          trace_id: TRACE_ID,
          name: 'raw::target',
          kind: 'server',
          status: 'ok',
          service_name: 'iii',
        });
        expect(tree.roots[0].end_time_unix_nano).toBeGreaterThanOrEqual(tree.roots[0].start_time_unix_nano);
      } finally {
        worker.close();
        caller.close();
      }
    });

    test('engine::traces::list lists root spans with filters and pagination; clear empties the ring', async () => {
      const w = t.worker('lister');
      w.registerFunction('list::ok', async () => 'fine');
      w.registerFunction('list::bad', async () => {
        throw new Error('nope');
      });
      await functionRegistered(t.engine, 'list::bad');
      for (let i = 0; i < 3; i++) await call(w, 'list::ok', {});
      await failure(w, 'list::bad', {});

      const ok = await call(w, 'engine::traces::list', { name: 'list::ok', limit: 2 });
      expect(ok).toMatchObject({ total: 3, offset: 0, limit: 2 });
      expect(ok.spans).toHaveLength(2);
      expect(ok.spans[0].start_time_unix_nano).toBeGreaterThanOrEqual(ok.spans[1].start_time_unix_nano);
      const errors = await call(w, 'engine::traces::list', { status: 'error' });
      expect(errors.spans.map((s: Any) => s.name)).toEqual(['list::bad']);
      // engine::* calls (like these lists) are hidden unless asked for.
      const internal = await call(w, 'engine::traces::list', { include_internal: true, name: 'engine::traces::list' });
      expect(internal.total).toBeGreaterThan(0);
      expect((await call(w, 'engine::traces::list', { name: 'engine::traces::list' })).total).toBe(0);

      expect(await call(w, 'engine::traces::clear', {})).toMatchObject({ success: true });
      expect((await call(w, 'engine::traces::list', { name: 'list::' })).total).toBe(0);

      const bad = await failure(w, 'engine::traces::list', { status: 'sideways' });
      expect(bad.code).toBe('deserialization_error');
      expect(bad.message).toContain('status');
      expect((await failure(w, 'engine::traces::list', { limit: 5000 })).message).toContain('at most 1000');
      expect((await failure(w, 'engine::traces::tree', {})).message).toContain('trace_id');
    });

    test('engine::baggage::get/get_all read the caller baggage; set returns the header to send on', async () => {
      const caller = await RawClient.connect(t.url);
      try {
        const extra = { baggage: 'tenant=acme,region=eu%20west' };
        expect((await rawCall(caller, 'engine::baggage::get', { key: 'region' }, extra)).result).toEqual({
          value: 'eu west',
        });
        expect((await rawCall(caller, 'engine::baggage::get', { key: 'missing' }, extra)).result).toEqual({
          value: null,
        });
        expect((await rawCall(caller, 'engine::baggage::get_all', {}, extra)).result).toEqual({
          baggage: { tenant: 'acme', region: 'eu west' },
        });
        const set = (await rawCall(caller, 'engine::baggage::set', { key: 'user', value: 'a b' }, extra)).result;
        expect(set.baggage.split(',').sort()).toEqual(['region=eu%20west', 'tenant=acme', 'user=a%20b']);
        const bad = await rawCall(caller, 'engine::baggage::set', { key: 'bad key', value: 'x' }, extra);
        expect(bad.error).toMatchObject({ code: 'deserialization_error' });
        expect((await rawCall(caller, 'engine::baggage::get_all', {})).result).toEqual({ baggage: {} });
      } finally {
        caller.close();
      }
    });

    test('engine::log::* records are listed newest first with filters, and cleared', async () => {
      const w = t.worker('logger');
      await call(w, 'engine::log::info', {
        message: 'hello',
        data: { order: 7 },
        trace_id: TRACE_ID,
        span_id: CALLER_SPAN,
        service_name: 'shop',
      });
      await call(w, 'engine::log::warn', { message: 'careful' });
      await call(w, 'engine::log::error', { message: 'broken' });

      const all = await call(w, 'engine::logs::list', {});
      expect(all.total).toBe(3);
      expect(all.timestamp).toEqual(expect.any(Number));
      expect(all.logs.map((l: Any) => l.body)).toEqual(['broken', 'careful', 'hello']);
      expect(all.logs[2]).toMatchObject({
        severity_number: 9,
        severity_text: 'INFO',
        attributes: { order: 7 },
        trace_id: TRACE_ID,
        span_id: CALLER_SPAN,
        service_name: 'shop',
      });
      expect(all.logs[2].timestamp_unix_nano).toBeGreaterThan(1.6e18);

      expect((await call(w, 'engine::logs::list', { severity_min: 13 })).logs.map((l: Any) => l.body)).toEqual([
        'broken',
        'careful',
      ]);
      expect((await call(w, 'engine::logs::list', { severity_text: 'warn' })).logs.map((l: Any) => l.body)).toEqual([
        'careful',
      ]);
      expect((await call(w, 'engine::logs::list', { trace_id: TRACE_ID })).logs.map((l: Any) => l.body)).toEqual([
        'hello',
      ]);
      const page = await call(w, 'engine::logs::list', { offset: 1, limit: 1 });
      expect({ total: page.total, bodies: page.logs.map((l: Any) => l.body) }).toEqual({
        total: 3,
        bodies: ['careful'],
      });

      expect(await call(w, 'engine::logs::clear', {})).toMatchObject({ success: true, cleared: 3 });
      expect((await call(w, 'engine::logs::list', {})).total).toBe(0);

      expect((await failure(w, 'engine::log::info', { data: 1 })).message).toContain('missing field `message`');
      expect((await failure(w, 'engine::logs::list', { limit: -1 })).code).toBe('deserialization_error');
    });

    test('a log trigger with level warn fires for warn and error records only', async () => {
      const handler = t.worker('log-handler');
      const seen: Any[] = [];
      handler.registerFunction('logs::on', async (payload: Any) => {
        seen.push(payload);
        return null;
      });
      handler.registerTrigger({ type: 'log', function_id: 'logs::on', config: { level: 'warn' } });
      await waitFor(() => t.engine.registry.triggersOfType('log', 'live').length === 1, 'the live log binding');
      const w = t.worker('log-writer');
      await call(w, 'engine::log::info', { message: 'quiet' });
      await call(w, 'engine::log::warn', { message: 'loud', data: { k: 'v' } });
      await call(w, 'engine::log::error', { message: 'louder' });
      await waitFor(() => seen.length >= 2, 'two log deliveries');
      await sleep(100); // the info record must not arrive
      expect(seen.map((p) => p.body).sort()).toEqual(['loud', 'louder']);
      expect(seen.find((p) => p.body === 'loud')).toMatchObject({
        severity_text: 'WARN',
        severity_number: 13,
        attributes: { k: 'v' },
        service_name: 'log-writer',
      });
    });

    test('a log handler that logs inside its delivery trace does not trigger itself again', async () => {
      const handler = await RawClient.connect(t.url);
      try {
        handler.send({ type: 'registerfunction', id: 'raw::on-log' });
        handler.send({
          type: 'registertrigger',
          id: randomUUID(),
          trigger_type: 'log',
          function_id: 'raw::on-log',
          config: { level: 'warn' },
        });
        await waitFor(() => t.engine.registry.triggersOfType('log', 'live').length === 1, 'the live log binding');
        const w = t.worker('log-source');
        await call(w, 'engine::log::warn', { message: 'first' });
        const delivery = await handler.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::on-log');
        expect((delivery.data as Any).body).toBe('first');
        // The handler answers, then logs a warning in the trace it was called in (as an SDK with OTel on does).
        handler.send({
          type: 'invocationresult',
          invocation_id: delivery.invocation_id,
          function_id: 'raw::on-log',
          result: null,
        });
        const logged = await rawCall(
          handler,
          'engine::log::warn',
          { message: 'from the handler' },
          { traceparent: delivery.traceparent },
        );
        expect(logged.error).toBeUndefined();
        const deliveryTrace = String(delivery.traceparent).split('-')[1];
        expect((await call(w, 'engine::logs::list', { trace_id: deliveryTrace })).logs.map((l: Any) => l.body)).toEqual(
          ['from the handler'],
        );
        await sleep(200); // a self-feeding trigger would deliver 'from the handler' by now
        expect(
          handler.received.filter((m) => m.type === 'invokefunction' && m.function_id === 'raw::on-log'),
        ).toHaveLength(1);
      } finally {
        handler.close();
      }
    });

    test('a log trigger with an unknown level is refused with a message naming the levels', async () => {
      const w = t.worker('log-bad');
      w.registerFunction('logs::never', async () => null);
      await functionRegistered(t.engine, 'logs::never');
      const err = await failure(w, 'engine::register_trigger', {
        trigger_type: 'log',
        function_id: 'logs::never',
        config: { level: 'loud' },
      });
      expect(err.code).toBe('trigger_registration_failed');
      expect(err.message).toContain('all, trace, debug, info, warn, error');
      expect(await call(w, 'engine::health::check', {})).toMatchObject({ status: 'healthy' });
    });

    test('a trace trigger fires with the trace ids that had activity, and its own deliveries do not feed it', async () => {
      const handler = t.worker('trace-handler');
      const ticks: string[][] = [];
      handler.registerFunction('traces::on', async (payload: Any) => {
        ticks.push(payload.trace_ids);
        return null;
      });
      handler.registerFunction('traces::work', async () => 'done');
      handler.registerTrigger({ type: 'trace', function_id: 'traces::on', config: { status: 'OK' } });
      await functionRegistered(t.engine, 'traces::work');
      await waitFor(() => t.engine.registry.triggersOfType('trace', 'live').length === 1, 'the live trace binding');
      const caller = await RawClient.connect(t.url);
      try {
        await rawCall(caller, 'traces::work', {}, { traceparent: CALLER_TRACEPARENT });
      } finally {
        caller.close();
      }
      await waitFor(() => ticks.some((ids) => ids.includes(TRACE_ID)), 'a trace tick with the call trace id');
      const count = ticks.length;
      await sleep(800); // longer than two ticks: a self-feeding trigger would have fired again
      expect(ticks.length).toBe(count);
    });

    test('one trace tick carries at most 1000 trace ids', async () => {
      const handler = t.worker('busy-trace-handler');
      const ticks: string[][] = [];
      handler.registerFunction('traces::busy', async (payload: Any) => {
        ticks.push(payload.trace_ids);
        return null;
      });
      handler.registerTrigger({ type: 'trace', function_id: 'traces::busy', config: { service_name: 'burst' } });
      await waitFor(() => t.engine.registry.triggersOfType('trace', 'live').length === 1, 'the live trace binding');
      const spans = Array.from({ length: 1100 }, (_, i) => ({
        traceId: (i + 1).toString(16).padStart(32, '0'),
        spanId: 'eeeeeeeeeeeeeeee',
        name: `burst ${i}`,
      }));
      const socket = await openTelemetrySocket(t);
      socket.send(
        frame('OTLP', {
          resourceSpans: [
            {
              resource: { attributes: [{ key: 'service.name', value: { stringValue: 'burst' } }] },
              scopeSpans: [{ spans }],
            },
          ],
        }),
      );
      await closeSocket(socket);
      await waitFor(() => ticks.length > 0, 'the burst tick');
      expect(ticks[0]).toHaveLength(1000);
      expect(new Set(ticks[0]).size).toBe(1000);
    });

    test('SDK telemetry frames on /otel land in the span ring, the log ring and the SDK metrics', async () => {
      const socket = await openTelemetrySocket(t);
      const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'sdk-svc' } }] };
      const sdkTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
      socket.send(
        frame('OTLP', {
          resourceSpans: [
            {
              resource,
              scopeSpans: [
                {
                  scope: { name: 'iii-sdk' },
                  spans: [
                    {
                      traceId: sdkTrace,
                      spanId: 'bbbbbbbbbbbbbbbb',
                      name: 'execute sdk::fn',
                      kind: 1,
                      startTimeUnixNano: '1700000000000000000',
                      endTimeUnixNano: '1700000000005000000',
                      attributes: [{ key: 'answer', value: { intValue: '42' } }],
                      status: { code: 2, message: 'bad' },
                    },
                  ],
                },
              ],
            },
          ],
        }),
      );
      socket.send(
        frame('LOGS', {
          resourceLogs: [
            {
              resource,
              scopeLogs: [
                {
                  scope: { name: 'sdk-logger' },
                  logRecords: [
                    {
                      timeUnixNano: '1700000000000000000',
                      severityNumber: 13,
                      severityText: 'WARN',
                      body: { stringValue: 'from sdk' },
                      traceId: sdkTrace,
                    },
                  ],
                },
              ],
            },
          ],
        }),
      );
      socket.send(
        frame('MTRC', {
          resourceMetrics: [
            {
              resource,
              scopeMetrics: [{ metrics: [{ name: 'sdk.requests', unit: '1', sum: { dataPoints: [{ asInt: '5' }] } }] }],
            },
          ],
        }),
      );
      const w = t.worker('telemetry-reader');
      const spans = await waitFor(async () => {
        const out = await call(w, 'engine::traces::list', { trace_id: sdkTrace });
        return out.total > 0 && out.spans;
      }, 'the SDK span in traces::list');
      expect(spans[0]).toMatchObject({
        trace_id: sdkTrace,
        span_id: 'bbbbbbbbbbbbbbbb',
        name: 'execute sdk::fn',
        kind: 'internal',
        status: 'error',
        status_message: 'bad',
        service_name: 'sdk-svc',
        attributes: { answer: 42 },
        start_time_unix_nano: 1.7e18,
      });
      expect(spans[0].duration_ms).toBe(5);
      const logs = await call(w, 'engine::logs::list', { trace_id: sdkTrace });
      expect(logs.logs).toEqual([
        expect.objectContaining({
          body: 'from sdk',
          severity_number: 13,
          service_name: 'sdk-svc',
          instrumentation_scope_name: 'sdk-logger',
        }),
      ]);
      const metrics = await call(w, 'engine::metrics::list', { metric_name: 'sdk.requests' });
      expect(metrics.sdk_metrics).toEqual([
        expect.objectContaining({
          name: 'sdk.requests',
          type: 'sum',
          data_points: [{ asInt: '5' }],
          service_name: 'sdk-svc',
        }),
      ]);
      await closeSocket(socket);
    });

    test('malformed telemetry frames are counted and dropped; the node and the socket keep serving', async () => {
      const socket = await openTelemetrySocket(t);
      socket.send(frame('OTLP', '{not json'));
      socket.send(frame('LOGS', '[1, 2]'));
      socket.send(frame('MTRC', { resourceMetrics: 5 }));
      socket.send(frame('OTLP', { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'no ids' }] }] }] }));
      socket.send(
        frame('OTLP', {
          resourceSpans: [
            {
              scopeSpans: [
                { spans: [{ traceId: 'cccccccccccccccccccccccccccccccc', spanId: 'dddddddddddddddd', name: 'fine' }] },
              ],
            },
          ],
        }),
      );
      const w = t.worker('after-garbage');
      const health = await waitFor(async () => {
        const out = await call(w, 'engine::health::check', {});
        return out.components.telemetry.ingested.OTLP >= 1 && out;
      }, 'the good frame after the bad ones');
      expect(health.components.telemetry.dropped).toEqual({ OTLP: 2, LOGS: 1, MTRC: 1 });
      expect((await call(w, 'engine::traces::list', { name: 'fine' })).total).toBe(1);
      const metrics = await fetch(`http://127.0.0.1:${t.engine.metricsPort}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/iii_telemetry_dropped_total\{signal="OTLP"[^}]*\} 2/);
      expect(socket.readyState).toBe(WebSocket.OPEN);
      await closeSocket(socket);
    });

    test('engine::metrics::list and /metrics report invocations and errors per function and code', async () => {
      const w = t.worker('metered');
      w.registerFunction('metered::fail', async () => {
        throw new Error('metered failure');
      });
      await functionRegistered(t.engine, 'metered::fail');
      const err = await failure(w, 'metered::fail', {});
      const listed = await call(w, 'engine::metrics::list', { metric_name: 'iii_invocations_total' });
      expect(listed.engine_metrics.prometheus).toHaveLength(1);
      expect(listed.engine_metrics.prometheus[0].values).toContainEqual(
        expect.objectContaining({
          labels: expect.objectContaining({ function: 'metered::fail', outcome: err.code }),
          value: 1,
        }),
      );
      const text = await fetch(`http://127.0.0.1:${t.engine.metricsPort}/metrics`).then((r) => r.text());
      expect(text).toContain(`iii_invocations_total{function="metered::fail",outcome="${err.code}"`);
      expect(text).toMatch(/iii_invocation_duration_seconds_count\{[^}]*function="metered::fail"[^}]*\} 1/);
      expect(text).toMatch(/iii_connected_workers\{[^}]*\} [1-9]/);
      expect(text).toContain('iii_pending_calls');
    });
  });

  test('the span, log and SDK metric stores keep only the newest memory_max_spans / logs_max_count / metrics_max_count', async () => {
    const t = await startWith({ memory_max_spans: 3, logs_max_count: 2, metrics_max_count: 2 });
    try {
      const w = t.worker('bounded');
      w.registerFunction('ring::fn', async () => null);
      await functionRegistered(t.engine, 'ring::fn');
      for (let i = 0; i < 6; i++) await call(w, 'ring::fn', { i });
      for (let i = 0; i < 4; i++) await call(w, 'engine::log::info', { message: `m${i}` });
      const spans = await call(w, 'engine::traces::list', { search_all_spans: true, include_internal: true });
      expect(spans.total).toBeLessThanOrEqual(3);
      const logs = await call(w, 'engine::logs::list', {});
      expect({ total: logs.total, bodies: logs.logs.map((l: Any) => l.body) }).toEqual({
        total: 2,
        bodies: ['m3', 'm2'],
      });
      const health = await call(w, 'engine::health::check', {});
      expect(health.components.spans).toMatchObject({ capacity: 3 });
      expect(health.components.spans.count).toBeLessThanOrEqual(3);
      expect(health.components.logs).toMatchObject({ count: 2, capacity: 2 });

      const socket = await openTelemetrySocket(t);
      const metric = (name: string) => ({ name, gauge: { dataPoints: [{ asDouble: 1 }] } });
      socket.send(
        frame('MTRC', {
          resourceMetrics: [{ scopeMetrics: [{ metrics: [metric('m.a'), metric('m.b'), metric('m.c')] }] }],
        }),
      );
      await closeSocket(socket);
      const metrics = await waitFor(async () => {
        const out = await call(w, 'engine::metrics::list', {});
        return out.sdk_metrics.length > 0 && out.sdk_metrics;
      }, 'the SDK metrics');
      expect(metrics.map((m: Any) => m.name)).toEqual(['m.b', 'm.c']);
      expect((await failure(w, 'engine::logs::list', { limit: 1001 })).message).toContain('at most 1000');
    } finally {
      await t.close();
    }
  });

  test('memory_max_spans above 100,000 is capped, and sampling_ratio 0 keeps no root spans', async () => {
    const t = await startWith({ memory_max_spans: 5_000_000, sampling_ratio: 0 });
    try {
      const w = t.worker('unsampled');
      w.registerFunction('sample::fn', async () => null);
      await functionRegistered(t.engine, 'sample::fn');
      await call(w, 'sample::fn', {});
      const health = await call(w, 'engine::health::check', {});
      expect(health.components.spans).toMatchObject({ capacity: 100_000, count: 0 });
      expect(health.components.otel).toMatchObject({ sampling_ratio: 0, exporter: 'memory' });
      expect(t.engine.module<ObservabilityModule>('iii-observability')).toBeDefined();
    } finally {
      await t.close();
    }
  });

  // Last in the file: an SDK with OTel on installs process-wide OTel globals.
  test('spans an SDK worker exports (OTel on) nest under the engine span of the call', async () => {
    const t = await startEngine();
    const caller = await RawClient.connect(t.url);
    try {
      const w = t.worker('otel-sdk', { otel: { enabled: true } });
      w.registerFunction('sdk::traced', async () => 'traced');
      await functionRegistered(t.engine, 'sdk::traced');
      expect((await rawCall(caller, 'sdk::traced', {}, { traceparent: CALLER_TRACEPARENT })).result).toBe('traced');
      const reader = t.worker('otel-reader');
      const tree = await waitFor(
        async () => {
          const out = await call(reader, 'engine::traces::tree', { trace_id: TRACE_ID });
          return out.roots[0]?.children.length > 0 && out;
        },
        'the SDK span under the engine span',
        15_000,
      );
      expect(tree.roots).toHaveLength(1);
      expect(tree.roots[0]).toMatchObject({ name: 'sdk::traced', parent_span_id: CALLER_SPAN, service_name: 'iii' });
      expect(tree.roots[0].children[0]).toMatchObject({
        name: 'execute sdk::traced',
        parent_span_id: tree.roots[0].span_id,
        trace_id: TRACE_ID,
      });
    } finally {
      caller.close();
      await t.close();
      await sleep(100); // the SDK logs when its /otel socket has closed: let that happen inside the test
    }
  });
});
