/**
 * The `iii-observability` block (iii-modules.md §11.1) as this module reads it. Defaults are the
 * schema's (src/config/schema.ts), filled in by `resolveModuleConfig`; counts of 0 mean "unset"
 * and ratios are clamped to 0..1, as in the original.
 */

import { readAlerts, type AlertRule } from './alerts';
import { readSampling, type SamplingConfig } from './sampling';

export type SpanExporterKind = 'memory' | 'otlp' | 'both';

export interface ObservabilityConfig {
  enabled: boolean;
  serviceName: string;
  serviceVersion: string;
  serviceNamespace?: string;
  exporter: SpanExporterKind;
  /** OTLP gRPC endpoint, e.g. `http://127.0.0.1:4317`. */
  endpoint: string;
  samplingRatio: number;
  /** Spans kept in memory (at most MAX_MEMORY_SPANS). */
  memoryMaxSpans: number;
  metricsEnabled: boolean;
  /** SDK metrics kept, one entry per metric name (at most MAX_SDK_METRICS). */
  metricsMaxCount: number;
  logsEnabled: boolean;
  /** Log records kept in memory (at most MAX_MEMORY_LOGS). */
  logsMaxCount: number;
  logsSamplingRatio: number;
  /** `engine::log::*` records are also written to the engine's own (pino) log. */
  logsConsoleOutput: boolean;
  /** `otlp` also pushes the engine series over OTLP (otlp-signals.ts). */
  metricsExporter: 'memory' | 'otlp';
  /** `otlp` sends stored log records over OTLP/HTTP instead of keeping them; `both` does both. */
  logsExporter: SpanExporterKind;
  /** OTLP log batches: at most this many records, sent at least this often (milliseconds). */
  logsBatchSize: number;
  logsFlushIntervalMs: number;
  /** Records stored longer ago than this are no longer listed, in seconds. */
  logsRetentionSeconds: number;
  /** Age of the oldest sample of the engine metric series, in seconds. */
  metricsRetentionSeconds: number;
  sampling: SamplingConfig;
  alerts: AlertRule[];
}

/**
 * The ring never holds more spans than this, whatever `memory_max_spans` says (default 1,000,000
 * in the original): an engine span keeps about 350 bytes of heap (SDK spans with many attributes
 * more), so a full ring is roughly 35-100 MB.
 */
export const MAX_MEMORY_SPANS = 100_000;
/** Cap of `logs_max_count`, for the same reason. */
export const MAX_MEMORY_LOGS = 100_000;
/** Cap of `metrics_max_count` (distinct SDK metric names kept). */
export const MAX_SDK_METRICS = 10_000;

const DEFAULT_MEMORY_SPANS = 1_000_000;
const DEFAULT_LOGS = 1000;
const DEFAULT_SDK_METRICS = 10_000;
const DEFAULT_METRICS_RETENTION_SECONDS = 3600;
const DEFAULT_LOGS_RETENTION_SECONDS = 3600;
const DEFAULT_LOGS_BATCH = 100;
const DEFAULT_LOGS_FLUSH_MS = 5000;

/**
 * Reads the resolved block. `written` is the block as the user wrote it: an endpoint left out
 * falls back to `OTEL_EXPORTER_OTLP_ENDPOINT` before the default.
 */
export function readConfig(
  block: Record<string, unknown>,
  written: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): ObservabilityConfig {
  const endpoint =
    written.endpoint === undefined && env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? env.OTEL_EXPORTER_OTLP_ENDPOINT
      : str(block.endpoint, 'http://localhost:4317');
  const config: ObservabilityConfig = {
    enabled: block.enabled !== false,
    serviceName: str(block.service_name, 'iii'),
    serviceVersion: str(block.service_version, 'unknown'),
    exporter: exporterKind(block.exporter),
    endpoint,
    samplingRatio: ratio(block.sampling_ratio),
    memoryMaxSpans: count(block.memory_max_spans, DEFAULT_MEMORY_SPANS, MAX_MEMORY_SPANS),
    metricsEnabled: block.metrics_enabled !== false,
    metricsMaxCount: count(block.metrics_max_count, DEFAULT_SDK_METRICS, MAX_SDK_METRICS),
    logsEnabled: block.logs_enabled !== false,
    logsMaxCount: count(block.logs_max_count, DEFAULT_LOGS, MAX_MEMORY_LOGS),
    logsSamplingRatio: ratio(block.logs_sampling_ratio),
    logsConsoleOutput: block.logs_console_output !== false,
    metricsExporter: block.metrics_exporter === 'otlp' ? 'otlp' : 'memory',
    logsExporter: exporterKind(block.logs_exporter),
    logsBatchSize: count(block.logs_batch_size, DEFAULT_LOGS_BATCH, Number.MAX_SAFE_INTEGER),
    logsFlushIntervalMs: count(block.logs_flush_interval_ms, DEFAULT_LOGS_FLUSH_MS, Number.MAX_SAFE_INTEGER),
    logsRetentionSeconds: count(block.logs_retention_seconds, DEFAULT_LOGS_RETENTION_SECONDS, Number.MAX_SAFE_INTEGER),
    metricsRetentionSeconds: count(
      block.metrics_retention_seconds,
      DEFAULT_METRICS_RETENTION_SECONDS,
      Number.MAX_SAFE_INTEGER,
    ),
    sampling: readSampling(block.sampling),
    alerts: readAlerts(block.alerts),
  };
  if (typeof block.service_namespace === 'string') config.serviceNamespace = block.service_namespace;
  return config;
}

export function keepsSpansInMemory(config: ObservabilityConfig): boolean {
  return config.enabled && config.exporter !== 'otlp';
}

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback;
}

function exporterKind(value: unknown): SpanExporterKind {
  return value === 'otlp' || value === 'both' ? value : 'memory';
}

/** A ratio clamped to 0..1; anything else is 1. */
function ratio(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
}

/** A count where 0 means "unset" (the default), capped at `max`. */
function count(value: unknown, fallback: number, max: number): number {
  const n = typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : fallback;
  return Math.min(n, max);
}
