import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { OtlpSignalsCollector } from '../support/otlp-signals-collector';
import { call, failure } from '../support/calls';

/**
 * OTLP export of the engine's metrics (`metrics_exporter: otlp`) and logs (`logs_exporter`),
 * over gRPC and HTTP/protobuf, and of spans over HTTP when OTEL_EXPORTER_OTLP_PROTOCOL says so
 * (iii-modules.md §11.1), received by a fake collector.
 */

/** Starts an engine with `config` as its iii-observability block while `env` is set in process.env. */
async function startWithEnv(config: Record<string, unknown>, env: Record<string, string>): Promise<TestEngine> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const base = testConfig();
    return await startEngine({ modules: { ...base.modules, observability: { enabled: true, config } } });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('OTLP export of metrics and logs', () => {
  let collector: OtlpSignalsCollector;
  beforeAll(async () => {
    collector = await OtlpSignalsCollector.start();
  });
  afterAll(() => collector.close());

  test('metrics go over gRPC by default; logs over OTLP/HTTP, not kept in memory with logs_exporter: otlp', async () => {
    const t = await startWithEnv(
      {
        endpoint: collector.grpcEndpoint,
        metrics_exporter: 'otlp',
        logs_exporter: 'otlp',
        logs_batch_size: 1,
        logs_flush_interval_ms: 50,
      },
      { OTEL_METRIC_EXPORT_INTERVAL: '200', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `${collector.httpEndpoint}/v1/logs` },
    );
    try {
      const w = t.worker('exporting');
      w.registerFunction('ex::fail', async () => {
        throw new Error('exported failure');
      });
      await functionRegistered(t.engine, 'ex::fail');
      await failure(w, 'ex::fail', {});
      const errors = await waitFor(
        () => collector.metrics.find((m) => m.name === 'iii.invocations.error' && m.via === 'grpc' && m.value >= 1),
        'iii.invocations.error over gRPC',
        10_000,
      );
      expect(errors).toMatchObject({ kind: 'sum', serviceName: 'iii' });
      expect(collector.metrics.find((m) => m.name === 'iii.memory.rss_bytes')).toMatchObject({
        kind: 'gauge',
        via: 'grpc',
      });
      expect(collector.metrics.find((m) => m.name === 'iii.memory.rss_bytes')!.value).toBeGreaterThan(0);

      await call(w, 'engine::log::warn', {
        message: 'sent over otlp',
        trace_id: 'ab'.repeat(16),
        span_id: 'cd'.repeat(8),
      });
      const log = await waitFor(
        () => collector.logs.find((l) => l.body === 'sent over otlp'),
        'the log record over OTLP/HTTP',
        10_000,
      );
      expect(log).toMatchObject({
        severityNumber: 13,
        severityText: 'WARN',
        via: 'http',
        serviceName: 'iii',
        traceId: 'ab'.repeat(16),
        spanId: 'cd'.repeat(8),
      });
      expect((await call(w, 'engine::logs::list', {})).total).toBe(0);
    } finally {
      await t.close();
    }
  });

  test('OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf sends spans and metrics to <endpoint>/v1/traces and /v1/metrics with OTEL_EXPORTER_OTLP_HEADERS', async () => {
    const t = await startWithEnv(
      {
        endpoint: collector.httpEndpoint,
        exporter: 'both',
        metrics_exporter: 'otlp',
        logs_exporter: 'both',
        logs_flush_interval_ms: 50,
      },
      {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_METRIC_EXPORT_INTERVAL: '200',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-team=console,x-note=a%20b',
      },
    );
    try {
      const w = t.worker('http-exporting');
      w.registerFunction('ex::http', async () => 'ok');
      await functionRegistered(t.engine, 'ex::http');
      await call(w, 'ex::http', {});
      const span = await waitFor(
        () => collector.httpSpans.find((s) => s.name === 'ex::http'),
        'the span over OTLP/HTTP',
        10_000,
      );
      expect(span).toMatchObject({
        serviceName: 'iii',
        attributes: expect.objectContaining({ 'iii.function.id': 'ex::http' }),
      });
      await waitFor(
        () => collector.metrics.some((m) => m.name === 'iii.invocations.total' && m.via === 'http'),
        'metrics over OTLP/HTTP',
        10_000,
      );
      expect(
        collector.httpHeaders.some(
          (h) => h['x-team'] === 'console' && h['x-note'] === 'a b' && h['content-type'] === 'application/x-protobuf',
        ),
      ).toBe(true);
      // logs_exporter: both keeps the record in memory too.
      await call(w, 'engine::log::info', { message: 'kept and sent' });
      await waitFor(() => collector.logs.some((l) => l.body === 'kept and sent'), 'the log over OTLP/HTTP', 10_000);
      expect((await call(w, 'engine::logs::list', {})).logs.map((l: { body: unknown }) => l.body)).toContain(
        'kept and sent',
      );
    } finally {
      await t.close();
    }
  });
});
