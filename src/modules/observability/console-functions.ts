import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import { MAX_TRACES_PAGE, oneOf, spanStore, type ObservabilityState } from './functions';
import { asJson } from './json';
import { isSeriesMetric, SERIES_METRICS, type SeriesMetric } from './metric-series';

/** `aggregate_interval` when only a time range is given, in seconds. */
const DEFAULT_AGGREGATE_SECONDS = 60;
const DEFAULT_GROUPS = 100;

/** Rollup levels of `engine::rollups::list`, in seconds. */
const ROLLUP_LEVELS = { '1m': 60, '5m': 300, '1h': 3600 } as const;
type RollupLevel = keyof typeof ROLLUP_LEVELS;

type Handler = (input: Input) => Json | undefined | Promise<Json | undefined>;

/**
 * What the iii web console calls besides traces and logs: `engine::metrics::list`,
 * `engine::rollups::list`, `engine::alerts::list|evaluate`, `engine::sampling::rules`,
 * `engine::traces::group_by`. Times in and out are unix milliseconds (a value above 1e16 is
 * taken as nanoseconds, the unit of the trace and log APIs).
 */
export function registerConsoleFunctions(host: ModuleHost, module: string, state: ObservabilityState): void {
  const fn = (id: string, description: string, handler: Handler) =>
    host.registerFunction(module, { id, description }, (data) => handler(new Input(id, data)));

  fn(
    'engine::metrics::list',
    'Engine metrics (invocations, workers, performance), the latest SDK metrics, and the engine series over time',
    async (input) => {
      const name = input.optString('metric_name');
      const start = timeMs(input, 'start_time');
      const end = timeMs(input, 'end_time');
      // Empty buckets are left out, so an answer never holds more buckets than the series has samples.
      const intervalSeconds = input.optNumber('aggregate_interval');
      if (intervalSeconds !== undefined && intervalSeconds <= 0)
        throw input.fail('field `aggregate_interval` must be a positive number of seconds');
      const view = await state.console.sample();
      const prometheus = (await host.metrics.registry.getMetricsAsJSON())
        .filter((m) => m.name.startsWith('iii_') && (name === undefined || m.name === name))
        .map((m) => ({
          name: m.name,
          help: m.help,
          type: String(m.type),
          values: m.values.map((v) => ({ labels: v.labels, value: v.value })),
        }));
      const sdk = state.sdkMetrics
        .list(name)
        .filter(
          (m) =>
            (start === undefined || m.received_at_unix_nano >= start * 1e6) &&
            (end === undefined || m.received_at_unix_nano <= end * 1e6),
        );
      const out: Record<string, Json> = {
        engine_metrics: asJson({ ...view, prometheus }),
        sdk_metrics: asJson(sdk),
        timestamp: Date.now(),
      };
      if (start !== undefined || end !== undefined || intervalSeconds !== undefined) {
        const seconds = intervalSeconds ?? DEFAULT_AGGREGATE_SECONDS;
        out.aggregated_metrics = asJson(state.console.series.aggregate(seconds * 1000, start, end, seriesNames(name)));
        out.query = queryEcho({ start_time: start, end_time: end, metric_name: name, aggregate_interval: seconds });
      }
      return out;
    },
  );

  fn('engine::rollups::list', 'The engine series rolled up by 1 min, 5 min and 1 h', async (input) => {
    const name = input.optString('metric_name');
    const start = timeMs(input, 'start_time');
    const end = timeMs(input, 'end_time');
    const level = oneOf(input, 'level', Object.keys(ROLLUP_LEVELS) as RollupLevel[]);
    await state.console.sample();
    const levels = level === undefined ? (Object.keys(ROLLUP_LEVELS) as RollupLevel[]) : [level];
    const rollups = levels.map((l) => ({
      level: l,
      interval_seconds: ROLLUP_LEVELS[l],
      buckets: state.console.series.aggregate(ROLLUP_LEVELS[l] * 1000, start, end, seriesNames(name)),
    }));
    return {
      rollups: asJson(rollups),
      metrics: [...seriesNames(name)],
      timestamp: Date.now(),
      query: queryEcho({ start_time: start, end_time: end, level, metric_name: name }),
    };
  });

  fn('engine::alerts::list', 'Alert rules (iii-observability alerts) and their state', () => ({
    alerts: state.console.alerts.list(),
    timestamp: Date.now(),
  }));
  fn('engine::alerts::evaluate', 'Evaluate every alert rule now', async () => {
    const firing = await state.console.evaluate();
    const alerts = state.console.alerts.list();
    return {
      evaluated: state.console.alerts.rules.filter((r) => r.enabled && isSeriesMetric(r.metric)).length,
      firing,
      alerts,
      timestamp: Date.now(),
    };
  });

  fn('engine::sampling::rules', 'The trace sampling rules in force', () => {
    const { config } = state;
    if (!state.sampler)
      return {
        enabled: false,
        sampling_ratio: config.samplingRatio,
        default: config.samplingRatio,
        parent_based: true,
        rules: [],
        rate_limit: null,
      };
    return asJson({ enabled: true, sampling_ratio: config.samplingRatio, ...state.sampler.describe() });
  });

  fn('engine::traces::group_by', 'Spans kept in memory grouped by the value of one attribute', (input) => {
    const limit = input.optU32('limit') ?? DEFAULT_GROUPS;
    if (limit > MAX_TRACES_PAGE) throw input.fail(`field \`limit\` must be at most ${MAX_TRACES_PAGE}`);
    const sinceMs = input.optNumber('since_ms');
    const labelAttribute = input.optString('label_attribute');
    const groups = spanStore(state).groupBy({
      attribute: input.string('attribute'),
      limit,
      includeInternal: input.optBoolean('include_internal') ?? false,
      ...(sinceMs === undefined ? {} : { sinceMs }),
      ...(labelAttribute === undefined ? {} : { labelAttribute }),
    });
    return { groups: asJson(groups) };
  });
}

/** The series metrics a `metric_name` selects: all without one, none for a name the series lacks. */
function seriesNames(name: string | undefined): readonly SeriesMetric[] {
  if (name === undefined) return SERIES_METRICS;
  return isSeriesMetric(name) ? [name] : [];
}

/** Unix milliseconds; values above 1e16 are unix nanoseconds (the trace and log APIs' unit). */
function timeMs(input: Input, key: string): number | undefined {
  const value = input.optNumber(key);
  if (value === undefined) return undefined;
  // Rounded: unix nanoseconds today are past 2^53, so `ms * 1e6` is not exact as a double.
  return value > 1e16 ? Math.round(value / 1e6) : value;
}

function queryEcho(fields: Record<string, string | number | undefined>): Json {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Json;
}
