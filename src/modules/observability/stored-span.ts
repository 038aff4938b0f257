import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Json } from '../../protocol/messages';

export type SpanStatusText = 'unset' | 'ok' | 'error';

export interface StoredSpanEvent {
  name: string;
  timestamp_unix_nano: number;
  attributes: Record<string, Json>;
}

/**
 * One span as the memory ring keeps it and `engine::traces::*` return it. Timestamps are unix
 * nanoseconds as JSON numbers (exact to about 0.25 µs; `duration_ms` is exact), `parent_span_id`
 * is absent on roots, ids are lower-case hex. Engine spans share one `resource` object.
 */
export interface StoredSpan {
  trace_id: string;
  span_id: string;
  parent_span_id?: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified';
  start_time_unix_nano: number;
  end_time_unix_nano: number;
  duration_ms: number;
  status: SpanStatusText;
  status_message?: string;
  service_name: string;
  attributes: Record<string, Json>;
  events: StoredSpanEvent[];
  resource: Record<string, Json>;
  instrumentation_scope_name?: string;
  /** The node that recorded the span: set in answers with `scope: 'cluster'` only. */
  node?: string;
}

const KINDS: Record<number, StoredSpan['kind']> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const NO_EVENTS: StoredSpanEvent[] = [];

export function statusText(code: SpanStatusCode): SpanStatusText {
  return code === SpanStatusCode.ERROR ? 'error' : code === SpanStatusCode.OK ? 'ok' : 'unset';
}

/** The resource of an OTel span as JSON (computed once per tracer, shared by its spans). */
export function resourceJson(attributes: Attributes): Record<string, Json> {
  return attributesJson(attributes);
}

/**
 * An ended engine span in the compact form the ring keeps (the SDK's span object holds several
 * times more heap). The span's attribute values are primitives or arrays of them, so the
 * attribute object is kept as is.
 */
export function fromReadableSpan(
  span: ReadableSpan,
  resource: Record<string, Json>,
  serviceName: string,
  scopeName: string,
): StoredSpan {
  const context = span.spanContext();
  const start = hrNanos(span.startTime);
  const durationNs = span.duration[0] * 1e9 + span.duration[1];
  const stored: StoredSpan = {
    trace_id: context.traceId,
    span_id: context.spanId,
    name: span.name,
    kind: KINDS[span.kind] ?? 'unspecified',
    start_time_unix_nano: start,
    end_time_unix_nano: start + durationNs,
    duration_ms: durationNs / 1e6,
    status: statusText(span.status.code),
    service_name: serviceName,
    attributes: span.attributes as Record<string, Json>,
    events:
      span.events.length === 0
        ? NO_EVENTS
        : span.events.map((e) => ({
            name: e.name,
            timestamp_unix_nano: hrNanos(e.time),
            attributes: attributesJson(e.attributes ?? {}),
          })),
    resource,
    instrumentation_scope_name: scopeName,
  };
  if (span.parentSpanContext) stored.parent_span_id = span.parentSpanContext.spanId;
  if (span.status.message) stored.status_message = span.status.message;
  return stored;
}

function hrNanos([seconds, nanos]: HrTime): number {
  return seconds * 1e9 + nanos;
}

function attributesJson(attributes: Attributes): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(attributes)) {
    out[key] = Array.isArray(value) ? value.map((v) => v ?? null) : (value ?? null);
  }
  return out;
}
