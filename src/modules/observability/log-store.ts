import type { Json } from '../../protocol/messages';
import { Ring } from './ring';

/** Severity numbers of OpenTelemetry log records, per level (the lowest number of each range). */
export const SEVERITY = { trace: 1, debug: 5, info: 9, warn: 13, error: 17 } as const;

export type LogLevel = keyof typeof SEVERITY;

export const LOG_LEVELS = Object.keys(SEVERITY) as LogLevel[];

/**
 * One log record as `engine::logs::list` returns it and `log` triggers receive it (§11.3).
 * Timestamps are unix nanoseconds as JSON numbers; `trace_id`/`span_id` are hex or null.
 */
export interface StoredLog {
  timestamp_unix_nano: number;
  observed_timestamp_unix_nano: number;
  severity_number: number;
  severity_text: string;
  body: Json;
  attributes: Record<string, Json>;
  trace_id: string | null;
  span_id: string | null;
  resource: Record<string, Json>;
  service_name: string;
  instrumentation_scope_name: string | null;
  instrumentation_scope_version: string | null;
}

export interface LogQuery {
  /** Unix nanoseconds, inclusive. */
  startTime?: number;
  endTime?: number;
  traceId?: string;
  spanId?: string;
  severityMin?: number;
  /** Case-insensitive. */
  severityText?: string;
  offset: number;
  limit: number;
}

/**
 * The newest `capacity` log records (engine::log::* and SDK logs). Lists are newest first and
 * leave out records stored more than `retentionMs` ago (`logs_retention_seconds`); those stay in
 * the ring until newer ones push them out. Age counts from when this node stored the record, not
 * from the SDK's timestamps (a worker's clock may be off).
 */
export class LogStore {
  private readonly ring: Ring<{ record: StoredLog; storedAtMs: number }>;

  constructor(
    capacity: number,
    private readonly retentionMs = Infinity,
  ) {
    this.ring = new Ring(capacity);
  }

  get size(): number {
    return this.ring.size;
  }

  add(record: StoredLog): void {
    this.ring.push({ record, storedAtMs: Date.now() });
  }

  clear(): void {
    this.ring.clear();
  }

  list(q: LogQuery): { logs: StoredLog[]; total: number } {
    const text = q.severityText?.toLowerCase();
    const oldestMs = Date.now() - this.retentionMs;
    const matches = [...this.ring]
      .filter((entry) => entry.storedAtMs >= oldestMs)
      .map((entry) => entry.record)
      .filter(
        (l) =>
          (q.startTime === undefined || l.timestamp_unix_nano >= q.startTime) &&
          (q.endTime === undefined || l.timestamp_unix_nano <= q.endTime) &&
          (q.traceId === undefined || l.trace_id === q.traceId) &&
          (q.spanId === undefined || l.span_id === q.spanId) &&
          (q.severityMin === undefined || l.severity_number >= q.severityMin) &&
          (text === undefined || l.severity_text.toLowerCase() === text),
      )
      .reverse();
    return { logs: matches.slice(q.offset, q.offset + q.limit), total: matches.length };
  }
}

/** The level a severity number falls in (OTel ranges 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17+ error and fatal). */
export function levelOf(severityNumber: number): LogLevel {
  if (severityNumber >= SEVERITY.error) return 'error';
  if (severityNumber >= SEVERITY.warn) return 'warn';
  if (severityNumber >= SEVERITY.info) return 'info';
  if (severityNumber >= SEVERITY.debug) return 'debug';
  return 'trace';
}
