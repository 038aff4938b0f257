import { ROOT_CONTEXT, trace, TraceFlags, type Context, type HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { logs as sdkLogs } from '@opentelemetry/sdk-node';
import type { Logger } from '../../observability/logger';
import type { ObservabilityConfig } from './config';
import type { StoredLog } from './log-store';
import type { ConsoleMetrics } from './console-metrics';
import { isCounter, SERIES_METRICS } from './metric-series';
import { OtlpLogExporter, OtlpMetricExporter } from './otlp-exporters';
import { OTLP_PUSH_TIMEOUT_MS, OtlpPush, otlpTarget } from './otlp-transport';

const SCOPE = 'iii-engine';
/** `OTEL_METRIC_EXPORT_INTERVAL` when unset (the OTel default), in milliseconds. */
const DEFAULT_METRIC_EXPORT_MS = 60_000;
/** Log records waiting for export; more are dropped (OTel's default). */
const MAX_QUEUED_LOGS = 2048;
/** At shutdown, queued metrics and logs get this long to reach the collector, in milliseconds. */
const SHUTDOWN_FLUSH_MS = 3000;
/** Export failures are logged at most this often, in milliseconds. */
const ERROR_LOG_EVERY_MS = 60_000;

type EmitLog = (record: StoredLog) => void;

/**
 * OTLP export of the engine's metrics (`metrics_exporter: otlp`) and of the log records it
 * stores (`logs_exporter: otlp | both`), with the OTel SDK's MeterProvider and LoggerProvider
 * (loaded only when one of them is on) over OtlpPush.
 *
 * Metrics: every series metric (metric-series.ts) as `iii.<name>`, counters as monotonic sums,
 * gauges as gauges, sampled (at most once a second) every `OTEL_METRIC_EXPORT_INTERVAL` ms (60 000);
 * gRPC unless `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` say
 * `http/...` (then `<endpoint>/v1/metrics`). Logs: OTLP/HTTP to `<endpoint>/v1/logs`, always (as
 * in the original), batched by `logs_batch_size` and `logs_flush_interval_ms`.
 */
export class OtlpSignals {
  private lastErrorLogMs = 0;
  private readonly shutdowns: Array<() => Promise<void>> = [];
  private emitLog: EmitLog | undefined;

  private constructor(private readonly logger: Logger) {}

  static start(
    config: ObservabilityConfig,
    resource: Resource,
    metrics: ConsoleMetrics,
    logger: Logger,
    env: NodeJS.ProcessEnv,
  ): OtlpSignals | undefined {
    const metricsOn = config.metricsEnabled && config.metricsExporter === 'otlp';
    const logsOn = config.logsEnabled && config.logsExporter !== 'memory';
    if (!metricsOn && !logsOn) return undefined;
    // Loaded here, not at the top: the OTel SDK is large and most engines never export metrics or logs.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sdk = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
    const signals = new OtlpSignals(logger);
    const onError = (err: unknown) => signals.exportFailed(err);
    if (metricsOn) {
      const interval = positiveInt(env.OTEL_METRIC_EXPORT_INTERVAL) ?? DEFAULT_METRIC_EXPORT_MS;
      const exporter = new OtlpMetricExporter(new OtlpPush(otlpTarget('metrics', config.endpoint, env)), onError);
      const reader = new sdk.metrics.PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: interval,
        exportTimeoutMillis: Math.min(interval, OTLP_PUSH_TIMEOUT_MS),
      });
      const provider = new sdk.metrics.MeterProvider({ resource, readers: [reader] });
      const meter = provider.getMeter(SCOPE, config.serviceVersion);
      const instruments = SERIES_METRICS.map((name) => {
        const options = { description: `iii-cluster engine series metric ${name}` };
        return [
          name,
          isCounter(name)
            ? meter.createObservableCounter(`iii.${name}`, options)
            : meter.createObservableGauge(`iii.${name}`, options),
        ] as const;
      });
      meter.addBatchObservableCallback(
        async (result) => {
          await metrics.sample().catch(() => undefined);
          const values = metrics.series.newest?.values;
          if (!values) return;
          for (const [name, instrument] of instruments) {
            const value = values[name];
            if (value !== null) result.observe(instrument, value);
          }
        },
        instruments.map(([, instrument]) => instrument),
      );
      signals.shutdowns.push(() => provider.shutdown());
    }
    if (logsOn) {
      const exporter = new OtlpLogExporter(
        new OtlpPush(otlpTarget('logs', config.endpoint, env, 'http/protobuf')),
        onError,
      );
      const processor = new sdk.logs.BatchLogRecordProcessor({
        exporter,
        maxExportBatchSize: Math.min(config.logsBatchSize, MAX_QUEUED_LOGS),
        scheduledDelayMillis: config.logsFlushIntervalMs,
        exportTimeoutMillis: OTLP_PUSH_TIMEOUT_MS,
        maxQueueSize: MAX_QUEUED_LOGS,
      });
      const provider = new sdk.logs.LoggerProvider({ resource, processors: [processor] });
      const otelLogger = provider.getLogger(SCOPE, config.serviceVersion);
      signals.emitLog = (record) => otelLogger.emit(logRecord(record, config.serviceName));
      signals.shutdowns.push(() => provider.shutdown());
    }
    return signals;
  }

  /** Queues one stored log record for export (no-op unless logs go to OTLP). */
  log(record: StoredLog): void {
    this.emitLog?.(record);
  }

  /** Flushes what is queued (bounded by SHUTDOWN_FLUSH_MS) and stops. */
  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
    });
    await Promise.race([Promise.all(this.shutdowns.map((stop) => stop().catch(() => undefined))), deadline]);
    clearTimeout(timer);
  }

  private exportFailed(err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLogMs < ERROR_LOG_EVERY_MS) return;
    this.lastErrorLogMs = now;
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'OTLP export failed (logged at most once a minute)',
    );
  }
}

/** A stored record as an OTel log record: same times, severity, body, attributes and trace context. */
function logRecord(
  record: StoredLog,
  engineService: string,
): Parameters<ReturnType<sdkLogs.LoggerProvider['getLogger']>['emit']>[0] {
  const attributes: Record<string, unknown> = { ...(record.attributes as Record<string, unknown>) };
  if (record.service_name !== engineService) attributes['iii.source.service.name'] = record.service_name;
  const out: Parameters<ReturnType<sdkLogs.LoggerProvider['getLogger']>['emit']>[0] = {
    timestamp: hrTime(record.timestamp_unix_nano),
    observedTimestamp: hrTime(record.observed_timestamp_unix_nano),
    severityNumber: record.severity_number,
    severityText: record.severity_text,
    body: record.body,
    attributes: attributes as never,
  };
  const context = traceContext(record.trace_id, record.span_id);
  if (context) out.context = context;
  return out;
}

function traceContext(traceId: string | null, spanId: string | null): Context | undefined {
  if (!traceId || !spanId) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
}

function hrTime(unixNano: number): HrTime {
  const seconds = Math.floor(unixNano / 1e9);
  return [seconds, Math.max(0, Math.round(unixNano - seconds * 1e9))];
}

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}
