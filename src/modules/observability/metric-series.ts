/**
 * The engine's own metrics over time: a bounded ring of samples, each a set of named values,
 * taken every SAMPLE_INTERVAL_MS (and by queries, at most once per MIN_SAMPLE_GAP_MS). It backs
 * `engine::metrics::list {start_time, end_time, aggregate_interval}`, `engine::rollups::list`
 * and the alert rules. Counters are cumulative since the engine started (they begin at 0);
 * gauges are what was measured at (or over the interval before) the sample.
 */

/** The series is sampled this often, in milliseconds (the alert evaluation tick too). */
export const SAMPLE_INTERVAL_MS = 10_000;
/** Queries add a sample of their own only when the newest is at least this old, in milliseconds. */
export const MIN_SAMPLE_GAP_MS = 1000;
/** Samples kept at most: 24 h at one per 10 s (each about 300 bytes). `metrics_retention_seconds` trims by age first. */
export const MAX_SERIES_SAMPLES = 8640;

/** Cumulative counts since the engine started. */
export const COUNTER_METRICS = ['invocations.total', 'invocations.success', 'invocations.error'] as const;
/** Values measured at the sample, or over the interval since the previous one. */
export const GAUGE_METRICS = [
  'invocations.rate_per_second',
  'invocations.error_rate',
  'latency.p50_ms',
  'latency.p99_ms',
  'workers.connected',
  'pending_calls',
  'memory.rss_bytes',
  'memory.heap_used_bytes',
  'event_loop.lag_ms',
  'cpu.percent',
] as const;

export type SeriesMetric = (typeof COUNTER_METRICS)[number] | (typeof GAUGE_METRICS)[number];
export const SERIES_METRICS: readonly SeriesMetric[] = [...COUNTER_METRICS, ...GAUGE_METRICS];

export function isSeriesMetric(name: string): name is SeriesMetric {
  return (SERIES_METRICS as readonly string[]).includes(name);
}

export function isCounter(name: SeriesMetric): boolean {
  return (COUNTER_METRICS as readonly string[]).includes(name);
}

export interface Sample {
  /** Unix milliseconds. */
  timestamp_ms: number;
  /** Null when there was nothing to measure (no calls in the interval for latencies). */
  values: Record<SeriesMetric, number | null>;
}

/** One metric over one bucket of time. `increase` only for counters. */
export interface Aggregate {
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  last: number | null;
  increase?: number;
}

export interface Bucket {
  /** Unix milliseconds; the bucket covers [start_time, end_time). */
  start_time: number;
  end_time: number;
  samples: number;
  metrics: Partial<Record<SeriesMetric, Aggregate>>;
}

export class MetricSeries {
  private samples: Sample[] = [];
  /** True once samples were dropped (by age or capacity): counters no longer start from 0 at the oldest. */
  private truncated = false;

  constructor(
    private readonly retentionMs: number,
    private readonly capacity = MAX_SERIES_SAMPLES,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  get newest(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  add(sample: Sample): void {
    this.samples.push(sample);
    const oldest = sample.timestamp_ms - this.retentionMs;
    let drop = 0;
    while (drop < this.samples.length - 1 && this.samples[drop].timestamp_ms < oldest) drop++;
    drop = Math.max(drop, this.samples.length - this.capacity);
    if (drop > 0) {
      this.samples.splice(0, drop);
      this.truncated = true;
    }
  }

  /** Samples with start <= timestamp <= end (unix milliseconds), oldest first. */
  range(start = -Infinity, end = Infinity): Sample[] {
    return this.samples.filter((s) => s.timestamp_ms >= start && s.timestamp_ms <= end);
  }

  /**
   * A metric over the `windowMs` before `now`: a counter's increase in the window, a gauge's
   * average over the window's samples. Null when the window has no value.
   */
  windowValue(name: SeriesMetric, windowMs: number, now: number): number | null {
    const start = now - windowMs;
    const inWindow = this.range(start, now);
    if (isCounter(name)) {
      const latest = inWindow[inWindow.length - 1]?.values[name];
      if (latest === undefined || latest === null) return null;
      return latest - this.counterBefore(name, start);
    }
    const values = inWindow.map((s) => s.values[name]).filter((v): v is number => v !== null);
    return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
  }

  /** Buckets of `intervalMs` aligned on the epoch, oldest first; empty buckets are left out. */
  aggregate(
    intervalMs: number,
    start = -Infinity,
    end = Infinity,
    names: readonly SeriesMetric[] = SERIES_METRICS,
  ): Bucket[] {
    const buckets = new Map<number, Sample[]>();
    for (const sample of this.range(start, end)) {
      const key = Math.floor(sample.timestamp_ms / intervalMs) * intervalMs;
      let list = buckets.get(key);
      if (!list) buckets.set(key, (list = []));
      list.push(sample);
    }
    const out: Bucket[] = [];
    for (const [key, samples] of buckets) {
      const metrics: Partial<Record<SeriesMetric, Aggregate>> = {};
      for (const name of names) metrics[name] = this.aggregateOne(name, samples, key);
      out.push({ start_time: key, end_time: key + intervalMs, samples: samples.length, metrics });
    }
    return out;
  }

  private aggregateOne(name: SeriesMetric, samples: Sample[], bucketStart: number): Aggregate {
    const values = samples.map((s) => s.values[name]).filter((v): v is number => v !== null);
    const agg: Aggregate = {
      count: values.length,
      min: values.length === 0 ? null : Math.min(...values),
      max: values.length === 0 ? null : Math.max(...values),
      avg: values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length,
      last: values.length === 0 ? null : values[values.length - 1],
    };
    if (isCounter(name)) agg.increase = agg.last === null ? 0 : agg.last - this.counterBefore(name, bucketStart);
    return agg;
  }

  /** A counter's value just before `time`: the newest sample before it, else 0 (counters start at 0). */
  private counterBefore(name: SeriesMetric, time: number): number {
    let before: number | null | undefined;
    for (const s of this.samples) {
      if (s.timestamp_ms >= time) break;
      before = s.values[name];
    }
    if (before !== undefined && before !== null) return before;
    // Older samples were dropped: the oldest kept is the best baseline left.
    return this.truncated ? (this.samples[0]?.values[name] ?? 0) : 0;
  }
}
