import { parseTraceParent } from '@opentelemetry/core';
import type { Json } from '../../protocol/messages';
import type { CallContext } from '../../router/router';
import { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import type { ObservabilityConfig } from './config';
import { asJson, nowUnixNano } from './json';
import { LOG_LEVELS, SEVERITY, type LogLevel, type LogStore, type StoredLog } from './log-store';

/** `engine::logs::list` returns at most this many records per page. */
export const MAX_LOGS_PAGE = 1000;
const DEFAULT_LOGS_PAGE = 100;

export interface LogSink {
  /** Stores a record and hands it to the `log` triggers. */
  record(log: StoredLog): void;
}

/**
 * `engine::log::info|warn|error|debug|trace` {message, data?, trace_id?, span_id?, service_name?}
 * and `engine::logs::list|clear`. A record without ids takes them from the call's traceparent (the
 * engine's span of the log call, a child of the caller's span).
 */
export function registerLogFunctions(
  host: ModuleHost,
  module: string,
  config: ObservabilityConfig,
  store: LogStore,
  sink: LogSink,
): void {
  for (const level of LOG_LEVELS) {
    const id = `engine::log::${level}`;
    host.registerFunction(
      module,
      { id, description: `Write a ${level} log record` },
      (data: Json, ctx: CallContext) => {
        const input = new Input(id, data);
        const message = input.string('message');
        if (!config.logsEnabled || (config.logsSamplingRatio < 1 && Math.random() >= config.logsSamplingRatio))
          return undefined;
        const record = logRecord(host, level, message, input, ctx);
        if (config.logsConsoleOutput) {
          host.logger[level](
            {
              source: 'worker',
              service_name: record.service_name,
              trace_id: record.trace_id,
              span_id: record.span_id,
              data: input.raw('data'),
              severity_number: record.severity_number,
            },
            message,
          );
        }
        sink.record(record);
        return undefined;
      },
    );
  }

  host.registerFunction(
    module,
    { id: 'engine::logs::list', description: 'List stored log records, newest first' },
    (data: Json) => {
      const input = new Input('engine::logs::list', data);
      const limit = input.optU32('limit') ?? DEFAULT_LOGS_PAGE;
      if (limit > MAX_LOGS_PAGE) throw input.fail(`field \`limit\` must be at most ${MAX_LOGS_PAGE}`);
      const query = {
        startTime: input.optNumber('start_time'),
        endTime: input.optNumber('end_time'),
        traceId: input.optString('trace_id')?.toLowerCase(),
        spanId: input.optString('span_id')?.toLowerCase(),
        severityMin: input.optNumber('severity_min'),
        severityText: input.optString('severity_text'),
        offset: input.optU32('offset') ?? 0,
        limit,
      };
      const { logs, total } = store.list(query);
      return { logs: asJson(logs), total, timestamp: Date.now() };
    },
  );

  host.registerFunction(module, { id: 'engine::logs::clear', description: 'Remove every stored log record' }, () => {
    const cleared = store.size;
    store.clear();
    return { success: true, cleared };
  });
}

function logRecord(host: ModuleHost, level: LogLevel, message: string, input: Input, ctx: CallContext): StoredLog {
  const now = nowUnixNano();
  const data = input.raw('data');
  const parent = ctx.traceparent === undefined ? null : parseTraceParent(ctx.traceparent);
  const serviceName = input.optString('service_name') ?? callerName(host, input) ?? 'unknown';
  return {
    timestamp_unix_nano: now,
    observed_timestamp_unix_nano: now,
    severity_number: SEVERITY[level],
    severity_text: level.toUpperCase(),
    body: message,
    attributes:
      data === undefined ? {} : typeof data === 'object' && data !== null && !Array.isArray(data) ? data : { data },
    trace_id: input.optString('trace_id') ?? parent?.traceId ?? null,
    span_id: input.optString('span_id') ?? parent?.spanId ?? null,
    resource: { 'service.name': serviceName },
    service_name: serviceName,
    instrumentation_scope_name: null,
    instrumentation_scope_version: null,
  };
}

/** The name the calling worker reported (engine::workers::register), if any. */
function callerName(host: ModuleHost, input: Input): string | undefined {
  const workerId = input.optString('_caller_worker_id');
  return workerId === undefined ? undefined : host.registry.worker(workerId)?.name;
}
