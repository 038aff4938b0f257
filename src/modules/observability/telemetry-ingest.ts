import type { Json } from '../../protocol/messages';
import { levelOf, type StoredLog } from './log-store';
import {
  anyValue,
  attributes,
  id,
  list,
  object,
  optObject,
  optString,
  OtlpShapeError,
  uint64,
  type JsonObject,
} from './otlp-json';
import type { SdkMetric } from './sdk-metrics';
import { statusText, type StoredSpan } from './stored-span';

/**
 * The SDKs' telemetry frames (`OTLP` traces, `LOGS`, `MTRC`; §11.5), parsed into the records
 * the stores keep. A body that is not JSON or not an OTLP export request throws (the whole frame
 * is dropped); a malformed record inside a good frame is skipped and counted.
 */
export interface Parsed<T> {
  items: T[];
  skipped: number;
}

/** OTLP's SpanKind enum (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer). */
const OTLP_KINDS: ReadonlyArray<StoredSpan['kind']> = [
  'unspecified',
  'internal',
  'server',
  'client',
  'producer',
  'consumer',
];
const METRIC_TYPES = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] as const;

export function parseTraces(body: Buffer): Parsed<StoredSpan> {
  const out: Parsed<StoredSpan> = { items: [], skipped: 0 };
  for (const resourceItem of list(request(body).resourceSpans, 'resourceSpans')) {
    const { resource, serviceName, children } = resourceOf(resourceItem, 'scopeSpans');
    for (const scopeItem of children) {
      const scope = object(scopeItem, 'scopeSpans[]');
      const scopeName = optString(optObject(scope.scope, 'scope')?.name);
      for (const spanItem of list(scope.spans, 'spans')) {
        collect(out, () => span(object(spanItem, 'span'), resource, serviceName, scopeName));
      }
    }
  }
  return out;
}

export function parseLogs(body: Buffer, observedAtNs: number): Parsed<StoredLog> {
  const out: Parsed<StoredLog> = { items: [], skipped: 0 };
  for (const resourceItem of list(request(body).resourceLogs, 'resourceLogs')) {
    const { resource, serviceName, children } = resourceOf(resourceItem, 'scopeLogs');
    for (const scopeItem of children) {
      const scopeLogs = object(scopeItem, 'scopeLogs[]');
      const scope = optObject(scopeLogs.scope, 'scope');
      for (const recordItem of list(scopeLogs.logRecords, 'logRecords')) {
        collect(out, () => {
          const r = object(recordItem, 'logRecord');
          const severityNumber = uint64(r.severityNumber, 'severityNumber');
          const timestamp =
            uint64(r.timeUnixNano, 'timeUnixNano') ||
            uint64(r.observedTimeUnixNano, 'observedTimeUnixNano') ||
            observedAtNs;
          return {
            timestamp_unix_nano: timestamp,
            observed_timestamp_unix_nano: uint64(r.observedTimeUnixNano, 'observedTimeUnixNano') || observedAtNs,
            severity_number: severityNumber,
            severity_text: optString(r.severityText) ?? levelOf(severityNumber).toUpperCase(),
            body: anyValue(r.body),
            attributes: attributes(r.attributes),
            trace_id: id(r.traceId, 16, 'traceId') ?? null,
            span_id: id(r.spanId, 8, 'spanId') ?? null,
            resource,
            service_name: serviceName,
            instrumentation_scope_name: optString(scope?.name) ?? null,
            instrumentation_scope_version: optString(scope?.version) ?? null,
          };
        });
      }
    }
  }
  return out;
}

export function parseMetrics(body: Buffer, receivedAtNs: number, workerId: string | undefined): Parsed<SdkMetric> {
  const out: Parsed<SdkMetric> = { items: [], skipped: 0 };
  for (const resourceItem of list(request(body).resourceMetrics, 'resourceMetrics')) {
    const { serviceName, children } = resourceOf(resourceItem, 'scopeMetrics');
    for (const scopeItem of children) {
      for (const metricItem of list(object(scopeItem, 'scopeMetrics[]').metrics, 'metrics')) {
        collect(out, () => {
          const m = object(metricItem, 'metric');
          const name = optString(m.name);
          if (name === undefined) throw new OtlpShapeError('metric.name is required');
          const type = METRIC_TYPES.find((t) => m[t] !== undefined && m[t] !== null);
          if (type === undefined) throw new OtlpShapeError(`metric ${name} has no data`);
          const metric: SdkMetric = {
            name,
            type,
            description: optString(m.description) ?? '',
            unit: optString(m.unit) ?? '',
            data_points: list(object(m[type], type).dataPoints, 'dataPoints'),
            service_name: serviceName,
            worker_id: workerId ?? null,
            received_at_unix_nano: receivedAtNs,
          };
          return metric;
        });
      }
    }
  }
  return out;
}

function request(body: Buffer): JsonObject {
  return object(JSON.parse(body.toString('utf8')) as Json, 'the export request');
}

function resourceOf(
  item: Json,
  childKey: string,
): { resource: Record<string, Json>; serviceName: string; children: Json[] } {
  const entry = object(item, 'resource entry');
  const resource = attributes(optObject(entry.resource, 'resource')?.attributes);
  const name = resource['service.name'];
  return {
    resource,
    serviceName: typeof name === 'string' ? name : 'unknown',
    children: list(entry[childKey], childKey),
  };
}

function collect<T>(out: Parsed<T>, parse: () => T): void {
  try {
    out.items.push(parse());
  } catch (err) {
    if (!(err instanceof OtlpShapeError)) throw err;
    out.skipped++;
  }
}

function span(
  s: JsonObject,
  resource: Record<string, Json>,
  serviceName: string,
  scopeName: string | undefined,
): StoredSpan {
  const traceId = id(s.traceId, 16, 'traceId');
  const spanId = id(s.spanId, 8, 'spanId');
  const name = optString(s.name);
  if (traceId === undefined || spanId === undefined || name === undefined)
    throw new OtlpShapeError('a span needs traceId, spanId and name');
  const start = uint64(s.startTimeUnixNano, 'startTimeUnixNano');
  const end = uint64(s.endTimeUnixNano, 'endTimeUnixNano') || start;
  const status = optObject(s.status, 'status');
  const out: StoredSpan = {
    trace_id: traceId,
    span_id: spanId,
    name,
    kind: OTLP_KINDS[typeof s.kind === 'number' ? s.kind : 0] ?? 'unspecified',
    start_time_unix_nano: start,
    end_time_unix_nano: end,
    duration_ms: durationMs(s.startTimeUnixNano, s.endTimeUnixNano, end - start),
    status: statusText(statusCode(status?.code)),
    service_name: serviceName,
    attributes: attributes(s.attributes),
    events: list(s.events, 'events').map((e) => {
      const event = object(e, 'event');
      return {
        name: optString(event.name) ?? '',
        timestamp_unix_nano: uint64(event.timeUnixNano, 'event.timeUnixNano'),
        attributes: attributes(event.attributes),
      };
    }),
    resource,
  };
  const parent = id(s.parentSpanId, 8, 'parentSpanId');
  if (parent !== undefined) out.parent_span_id = parent;
  const message = optString(status?.message);
  if (message !== undefined) out.status_message = message;
  if (scopeName !== undefined) out.instrumentation_scope_name = scopeName;
  return out;
}

/** Exact when both ends are integer strings (a double loses ~256 ns at today's epoch). */
function durationMs(start: Json | undefined, end: Json | undefined, approximateNs: number): number {
  if (typeof start === 'string' && typeof end === 'string' && /^\d+$/.test(start) && /^\d+$/.test(end)) {
    return Number(BigInt(end) - BigInt(start)) / 1e6;
  }
  return approximateNs / 1e6;
}

/** Status codes arrive as numbers (0 unset, 1 ok, 2 error) or as enum names. */
function statusCode(code: Json | undefined): number {
  if (typeof code === 'number') return code;
  if (code === 'STATUS_CODE_OK') return 1;
  if (code === 'STATUS_CODE_ERROR') return 2;
  return 0;
}
