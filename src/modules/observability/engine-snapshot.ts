import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { EngineMetrics } from '../../observability/metrics';
import type { Registry } from '../../registry/registry';
import type { Sample, SeriesMetric } from './metric-series';

/** `by_function` lists at most this many functions, the most called first. */
export const MAX_BY_FUNCTION = 1000;
/** Resolution of the event-loop delay monitor, in milliseconds. */
const EVENT_LOOP_RESOLUTION_MS = 20;

/** Cumulative histogram buckets: upper bound in seconds (Infinity last) → calls at or below it. */
export type Buckets = Map<number, number>;

export interface FunctionCounts {
  total: number;
  success: number;
  error: number;
  errorsByCode: Record<string, number>;
  buckets: Buckets;
  sumSeconds: number;
  count: number;
}

interface Cumulative {
  atMs: number;
  total: number;
  success: number;
  error: number;
  buckets: Buckets;
  cpuMicros: number;
}

/** The `engine_metrics` object of `engine::metrics::list`. */
export interface EngineMetricsView {
  invocations: {
    total: number;
    success: number;
    error: number;
    /** Over the interval since the previous sample. */
    rate_per_second: number | null;
    error_rate: number | null;
    by_function: Array<{
      function_id: string;
      total: number;
      success: number;
      error: number;
      errors_by_code: Record<string, number>;
      avg_ms: number | null;
      p50_ms: number | null;
      p99_ms: number | null;
    }>;
  };
  workers: { connected: number; on_this_node: number; by_runtime: Record<string, number> };
  performance: {
    /** Latencies since the engine started, estimated from the duration histogram. */
    p50_ms: number | null;
    p99_ms: number | null;
    avg_ms: number | null;
    pending_calls: number;
    memory: { rss_bytes: number; heap_used_bytes: number; heap_total_bytes: number; external_bytes: number };
    event_loop_lag_ms: number | null;
    event_loop_lag_p99_ms: number | null;
    cpu_percent: number | null;
    uptime_seconds: number;
  };
}

/**
 * Reads what the engine already counts (the Prometheus registry of EngineMetrics: invocations by
 * function and outcome, the duration histogram, pending calls; the registry's workers) and the
 * process (memory, CPU, event-loop delay) into the console's view and into series samples.
 * Interval figures (rates, latency percentiles, CPU) are relative to the last recorded sample.
 */
export class EngineSnapshot {
  private readonly eventLoop: IntervalHistogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  private previous: Cumulative;
  private readonly startedAtMs = Date.now();

  constructor(
    private readonly metrics: EngineMetrics,
    private readonly registry: Registry,
    private readonly nodeId: string,
  ) {
    this.eventLoop.enable();
    this.previous = {
      atMs: this.startedAtMs,
      total: 0,
      success: 0,
      error: 0,
      buckets: new Map(),
      cpuMicros: cpuMicros(),
    };
  }

  stop(): void {
    this.eventLoop.disable();
  }

  /**
   * The current view and a sample relative to the last recorded one. `record` makes this the new
   * baseline (the sample goes into the series) and restarts the event-loop delay measurement.
   */
  async read(record: boolean): Promise<{ view: EngineMetricsView; sample: Sample }> {
    const now = Date.now();
    const functions = await this.readFunctions();
    const all: FunctionCounts = sumOf(functions.values());
    const pending = await this.pendingCalls();
    const memory = process.memoryUsage();
    const cpu = cpuMicros();
    const prev = this.previous;
    const elapsedMs = Math.max(1, now - prev.atMs);
    const calls = all.total - prev.total;
    const interval = subtract(all.buckets, prev.buckets);
    const lagMs = this.eventLoop.count > 0 ? this.eventLoop.mean / 1e6 : null;
    const lagP99Ms = this.eventLoop.count > 0 ? this.eventLoop.percentile(99) / 1e6 : null;
    const cpuPercent = now > prev.atMs ? round(((cpu - prev.cpuMicros) / 1000 / elapsedMs) * 100) : null;
    const workers = this.workers();

    const values: Record<SeriesMetric, number | null> = {
      'invocations.total': all.total,
      'invocations.success': all.success,
      'invocations.error': all.error,
      'invocations.rate_per_second': round((calls * 1000) / elapsedMs),
      'invocations.error_rate': calls > 0 ? round((all.error - prev.error) / calls) : null,
      'latency.p50_ms': quantileMs(interval, 0.5),
      'latency.p99_ms': quantileMs(interval, 0.99),
      'workers.connected': workers.connected,
      pending_calls: pending,
      'memory.rss_bytes': memory.rss,
      'memory.heap_used_bytes': memory.heapUsed,
      'event_loop.lag_ms': lagMs === null ? null : round(lagMs),
      'cpu.percent': cpuPercent,
    };
    const byFunction = [...functions]
      .sort(([a, x], [b, y]) => y.total - x.total || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, MAX_BY_FUNCTION)
      .map(([id, f]) => ({
        function_id: id,
        total: f.total,
        success: f.success,
        error: f.error,
        errors_by_code: f.errorsByCode,
        avg_ms: f.count > 0 ? round((f.sumSeconds / f.count) * 1000) : null,
        p50_ms: quantileMs(f.buckets, 0.5),
        p99_ms: quantileMs(f.buckets, 0.99),
      }));
    const view: EngineMetricsView = {
      invocations: {
        total: all.total,
        success: all.success,
        error: all.error,
        rate_per_second: values['invocations.rate_per_second'],
        error_rate: values['invocations.error_rate'],
        by_function: byFunction,
      },
      workers,
      performance: {
        p50_ms: quantileMs(all.buckets, 0.5),
        p99_ms: quantileMs(all.buckets, 0.99),
        avg_ms: all.count > 0 ? round((all.sumSeconds / all.count) * 1000) : null,
        pending_calls: pending,
        memory: {
          rss_bytes: memory.rss,
          heap_used_bytes: memory.heapUsed,
          heap_total_bytes: memory.heapTotal,
          external_bytes: memory.external,
        },
        event_loop_lag_ms: values['event_loop.lag_ms'],
        event_loop_lag_p99_ms: lagP99Ms === null ? null : round(lagP99Ms),
        cpu_percent: cpuPercent,
        uptime_seconds: Math.round((now - this.startedAtMs) / 1000),
      },
    };
    if (record) {
      this.previous = {
        atMs: now,
        total: all.total,
        success: all.success,
        error: all.error,
        buckets: all.buckets,
        cpuMicros: cpu,
      };
      this.eventLoop.reset();
    }
    return { view, sample: { timestamp_ms: now, values } };
  }

  /** Per-function counts since the engine started, from EngineMetrics (also read by ClusterFigures). */
  async readFunctions(): Promise<Map<string, FunctionCounts>> {
    const out = new Map<string, FunctionCounts>();
    const of = (id: string) => {
      let f = out.get(id);
      if (!f)
        out.set(
          id,
          (f = { total: 0, success: 0, error: 0, errorsByCode: {}, buckets: new Map(), sumSeconds: 0, count: 0 }),
        );
      return f;
    };
    for (const v of (await this.metrics.invocations.get()).values) {
      const f = of(String(v.labels.function));
      const outcome = String(v.labels.outcome);
      f.total += v.value;
      if (outcome === 'ok') f.success += v.value;
      else {
        f.error += v.value;
        f.errorsByCode[outcome] = (f.errorsByCode[outcome] ?? 0) + v.value;
      }
    }
    for (const v of (await this.metrics.invocationSeconds.get()).values) {
      const f = of(String(v.labels.function));
      if (v.metricName?.endsWith('_bucket')) {
        const bound = (v.labels as Record<string, string | number | undefined>).le;
        const le = bound === '+Inf' ? Infinity : Number(bound);
        f.buckets.set(le, (f.buckets.get(le) ?? 0) + v.value);
      } else if (v.metricName?.endsWith('_sum')) f.sumSeconds += v.value;
      else if (v.metricName?.endsWith('_count')) f.count += v.value;
    }
    // A function with a histogram entry but no settled call yet (prom-client creates children eagerly).
    for (const [id, f] of out) if (f.total === 0 && f.count === 0) out.delete(id);
    return out;
  }

  private async pendingCalls(): Promise<number> {
    const gauge = this.metrics.registry.getSingleMetric('iii_pending_calls');
    const values = gauge ? (await gauge.get()).values : [];
    return values.reduce((sum, v) => sum + v.value, 0);
  }

  private workers(): EngineMetricsView['workers'] {
    const byRuntime: Record<string, number> = {};
    let connected = 0;
    let here = 0;
    for (const w of this.registry.workers()) {
      if (w.kind !== 'worker') continue;
      connected++;
      if (w.nodeId === this.nodeId) here++;
      byRuntime[w.runtime] = (byRuntime[w.runtime] ?? 0) + 1;
    }
    return { connected, on_this_node: here, by_runtime: byRuntime };
  }
}

function sumOf(functions: Iterable<FunctionCounts>): FunctionCounts {
  const all: FunctionCounts = {
    total: 0,
    success: 0,
    error: 0,
    errorsByCode: {},
    buckets: new Map(),
    sumSeconds: 0,
    count: 0,
  };
  for (const f of functions) {
    all.total += f.total;
    all.success += f.success;
    all.error += f.error;
    all.sumSeconds += f.sumSeconds;
    all.count += f.count;
    for (const [le, n] of f.buckets) all.buckets.set(le, (all.buckets.get(le) ?? 0) + n);
  }
  return all;
}

function subtract(current: Buckets, previous: Buckets): Buckets {
  const out: Buckets = new Map();
  for (const [le, n] of current) out.set(le, n - (previous.get(le) ?? 0));
  return out;
}

/**
 * A quantile in milliseconds from cumulative buckets, interpolated linearly inside the bucket as
 * Prometheus' histogram_quantile does; null without observations. Past the last finite bound
 * the answer is that bound.
 */
export function quantileMs(buckets: Buckets, q: number): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (bounds.length > 0 ? buckets.get(bounds[bounds.length - 1])! : 0);
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const cumulative = buckets.get(le)!;
    if (cumulative >= rank) {
      if (le === Infinity) return round(lower * 1000);
      const inBucket = cumulative - below;
      const fraction = inBucket > 0 ? (rank - below) / inBucket : 1;
      return round((lower + (le - lower) * fraction) * 1000);
    }
    lower = le;
    below = cumulative;
  }
  return round(lower * 1000);
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Three decimals: enough for milliseconds and rates, and JSON stays short. */
function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
