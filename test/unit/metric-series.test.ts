import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { quantileMs } from '../../src/modules/observability/engine-snapshot';
import {
  MetricSeries,
  SERIES_METRICS,
  type Sample,
  type SeriesMetric,
} from '../../src/modules/observability/metric-series';
import { globMatcher, readSampling, RuleSampler } from '../../src/modules/observability/sampling';

/** The engine metric series (windows, buckets, bounds), the histogram quantile, the rule sampler. */

function sample(atMs: number, values: Partial<Record<SeriesMetric, number | null>>): Sample {
  const all = Object.fromEntries(SERIES_METRICS.map((m) => [m, null])) as Record<SeriesMetric, number | null>;
  return { timestamp_ms: atMs, values: { ...all, ...values } };
}

describe('MetricSeries', () => {
  test('a counter over a window is its increase since the sample before the window; 0 is the baseline at start', () => {
    const series = new MetricSeries(3_600_000);
    series.add(sample(10_000, { 'invocations.error': 1 }));
    series.add(sample(20_000, { 'invocations.error': 4 }));
    series.add(sample(30_000, { 'invocations.error': 9 }));
    expect(series.windowValue('invocations.error', 15_000, 30_000)).toBe(8); // 9 - 1, the value at 10 000
    expect(series.windowValue('invocations.error', 5_000, 30_000)).toBe(5); // 9 - 4
    expect(series.windowValue('invocations.error', 60_000, 30_000)).toBe(9); // the engine started within the window
  });

  test('a gauge over a window is the average of its samples; null without any', () => {
    const series = new MetricSeries(3_600_000);
    series.add(sample(10_000, { 'latency.p99_ms': 10 }));
    series.add(sample(20_000, { 'latency.p99_ms': null }));
    series.add(sample(30_000, { 'latency.p99_ms': 30 }));
    expect(series.windowValue('latency.p99_ms', 60_000, 30_000)).toBe(20);
    expect(series.windowValue('latency.p99_ms', 5_000, 25_000)).toBeNull();
  });

  test('buckets are aligned on the epoch, empty ones left out, counters with their increase', () => {
    const series = new MetricSeries(3_600_000);
    series.add(sample(61_000, { 'invocations.total': 5, 'memory.rss_bytes': 100 }));
    series.add(sample(119_000, { 'invocations.total': 8, 'memory.rss_bytes': 300 }));
    series.add(sample(250_000, { 'invocations.total': 20, 'memory.rss_bytes': 200 }));
    const buckets = series.aggregate(60_000, undefined, undefined, ['invocations.total', 'memory.rss_bytes']);
    expect(buckets.map((b) => [b.start_time, b.end_time, b.samples])).toEqual([
      [60_000, 120_000, 2],
      [240_000, 300_000, 1],
    ]);
    expect(buckets[0].metrics['invocations.total']).toMatchObject({ last: 8, increase: 8 });
    expect(buckets[1].metrics['invocations.total']).toMatchObject({ last: 20, increase: 12 });
    expect(buckets[0].metrics['memory.rss_bytes']).toEqual({ count: 2, min: 100, max: 300, avg: 200, last: 300 });
  });

  test('samples older than the retention, or past the capacity, are dropped; counters then start from the oldest kept', () => {
    const series = new MetricSeries(20_000, 3);
    for (let i = 1; i <= 5; i++) series.add(sample(i * 10_000, { 'invocations.total': i * 10 }));
    expect(series.size).toBe(3);
    expect(series.range().map((s) => s.timestamp_ms)).toEqual([30_000, 40_000, 50_000]);
    expect(series.windowValue('invocations.total', 100_000, 50_000)).toBe(20); // 50 - 30
  });
});

describe('quantileMs', () => {
  test('interpolates inside the bucket holding the rank, as histogram_quantile does', () => {
    const buckets = new Map([
      [0.001, 0],
      [0.01, 10],
      [0.1, 20],
      [Infinity, 20],
    ]);
    expect(quantileMs(buckets, 0.5)).toBeCloseTo(10, 6);
    expect(quantileMs(buckets, 0.25)).toBeCloseTo(5.5, 6);
    expect(quantileMs(buckets, 0.99)).toBeCloseTo(98.2, 6);
  });

  test('null without observations; the last finite bound past it', () => {
    expect(
      quantileMs(
        new Map([
          [0.1, 0],
          [Infinity, 0],
        ]),
        0.5,
      ),
    ).toBeNull();
    expect(
      quantileMs(
        new Map([
          [0.1, 1],
          [Infinity, 10],
        ]),
        0.99,
      ),
    ).toBe(100);
  });
});

describe('RuleSampler', () => {
  const decide = (sampler: RuleSampler, name: string, parentSampled?: boolean) => {
    const context =
      parentSampled === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: 'a'.repeat(32),
            spanId: 'b'.repeat(16),
            traceFlags: parentSampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
            isRemote: true,
          });
    return sampler.shouldSample(context, 'c'.repeat(32), name, SpanKind.SERVER, {}, []).decision;
  };

  test('globs: * any run, ? one character, the whole name', () => {
    expect(globMatcher('orders::*')('orders::create')).toBe(true);
    expect(globMatcher('orders::*')('x::orders::create')).toBe(false);
    expect(globMatcher('a?c')('abc')).toBe(true);
    expect(globMatcher('a.c')('abc')).toBe(false);
  });

  test('the first matching rule wins; no rule, the default; service must match the engine service', () => {
    const sampler = new RuleSampler(
      readSampling({
        default: 0,
        rules: [
          { operation: 'keep::*', rate: 1 },
          { operation: 'keep::*', rate: 0 },
          { operation: 'other', service: 'not-iii', rate: 1 },
        ],
      }),
      'iii',
      1,
    );
    expect(decide(sampler, 'keep::this')).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(sampler, 'drop::this')).toBe(SamplingDecision.NOT_RECORD);
    expect(decide(sampler, 'other')).toBe(SamplingDecision.NOT_RECORD);
  });

  test('parent_based follows the parent; without it the rule decides', () => {
    const rules = { rules: [{ operation: '*', rate: 0 }] };
    expect(decide(new RuleSampler(readSampling(rules), 'iii', 1), 'x', true)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(new RuleSampler(readSampling({ ...rules, parent_based: false }), 'iii', 1), 'x', true)).toBe(
      SamplingDecision.NOT_RECORD,
    );
    expect(decide(new RuleSampler(readSampling({}), 'iii', 1), 'x', false)).toBe(SamplingDecision.NOT_RECORD);
  });

  test('rate_limit caps new traces per second; sampling_ratio is the fallback until default is set', () => {
    const limited = new RuleSampler(readSampling({ rate_limit: { max_traces_per_second: 2 } }), 'iii', 1);
    expect([1, 2, 3].map(() => decide(limited, 'x'))).toEqual([
      SamplingDecision.RECORD_AND_SAMPLED,
      SamplingDecision.RECORD_AND_SAMPLED,
      SamplingDecision.NOT_RECORD,
    ]);
    const fallback = new RuleSampler(readSampling({}), 'iii', 1);
    fallback.setSamplingRatio(0);
    expect(decide(fallback, 'x')).toBe(SamplingDecision.NOT_RECORD);
    const fixed = new RuleSampler(readSampling({ default: 1 }), 'iii', 1);
    fixed.setSamplingRatio(0);
    expect(decide(fixed, 'x')).toBe(SamplingDecision.RECORD_AND_SAMPLED);
  });
});
