import type { Json } from '../../protocol/messages';
import type { SdkMetric } from './sdk-metrics';

/** The SDK's worker gauges are named `iii.worker.<what>` (iii-sdk `registerWorkerGauges`). */
const WORKER_METRIC_PREFIX = 'iii.worker.';
/** Workers whose latest report is kept at most; the stalest is forgotten first. */
export const MAX_REPORTING_WORKERS = 10_000;

/**
 * The latest resource report of each worker, from the `iii.worker.*` gauges its SDK exports in
 * `MTRC` frames (memory, CPU, event-loop lag, uptime), keyed by the `worker.id` attribute of the
 * data point (the frame's connection when the point has none). Field names are the gauge's
 * without the prefix, dots as underscores (`iii.worker.memory.heap_used` → `memory_heap_used`),
 * the SDK collector's own names.
 */
export class WorkerMetrics {
  private readonly latest = new Map<string, Record<string, Json>>();

  record(metric: SdkMetric): void {
    if (!metric.name.startsWith(WORKER_METRIC_PREFIX)) return;
    const field = metric.name.slice(WORKER_METRIC_PREFIX.length).replace(/\./g, '_');
    for (const point of metric.data_points) {
      if (typeof point !== 'object' || point === null || Array.isArray(point)) continue;
      const workerId = attribute(point.attributes, 'worker.id') ?? metric.worker_id;
      const value = numberOf(point.asDouble ?? point.asInt);
      if (workerId === null || value === undefined) continue;
      const entry = this.latest.get(workerId) ?? {};
      entry[field] = value;
      entry.timestamp_ms = Math.round(metric.received_at_unix_nano / 1e6);
      this.latest.delete(workerId);
      this.latest.set(workerId, entry);
      if (this.latest.size > MAX_REPORTING_WORKERS) this.latest.delete(this.latest.keys().next().value as string);
    }
  }

  of(workerId: string): Record<string, Json> | undefined {
    return this.latest.get(workerId);
  }

  forget(workerId: string): void {
    this.latest.delete(workerId);
  }
}

/** A string attribute of an OTLP JSON attribute list. */
function attribute(list: Json | undefined, key: string): string | null {
  if (!Array.isArray(list)) return null;
  for (const item of list) {
    if (typeof item !== 'object' || item === null || Array.isArray(item) || item.key !== key) continue;
    const value = item.value;
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value.stringValue === 'string')
      return value.stringValue;
  }
  return null;
}

/** OTLP JSON numbers: doubles as numbers, int64 as numbers or decimal strings. */
function numberOf(value: Json | undefined): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return undefined;
}
