import { ENGINE_VERSION } from '../../config/version';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { CallContext } from '../../router/router';
import { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import { formatBaggage, parseBaggage } from './baggage';
import { answerTraceQueries, clusterList, clusterTree, traceScope } from './cluster-traces';
import type { ObservabilityConfig } from './config';
import { asJson } from './json';
import type { LogStore } from './log-store';
import type { ConsoleMetrics } from './console-metrics';
import type { SdkMetrics } from './sdk-metrics';
import type { SpanQuery, SpanStore } from './span-store';
import type { RuleSampler } from './sampling';

/** The original's error code for trace queries when spans are not kept in memory. */
export const MEMORY_EXPORTER_NOT_ENABLED = 'memory_exporter_not_enabled';
/** `engine::traces::list` returns at most this many spans per page. */
export const MAX_TRACES_PAGE = 1000;
const DEFAULT_TRACES_PAGE = 100;

export interface TelemetryCounts {
  /** Records taken from SDK frames, per signal. */
  ingested: Record<string, number>;
  /** Frames or records dropped as malformed, per signal. */
  dropped: Record<string, number>;
}

export interface ObservabilityState {
  config: ObservabilityConfig;
  /** Undefined unless spans are kept in memory (exporter memory or both, tracing enabled). */
  spans: SpanStore | undefined;
  logs: LogStore;
  sdkMetrics: SdkMetrics;
  telemetry: TelemetryCounts;
  /** The engine metric series and alert rules (engine::metrics::list, rollups, alerts). */
  console: ConsoleMetrics;
  /** Undefined when tracing is disabled. */
  sampler: RuleSampler | undefined;
}

type Handler = (input: Input, ctx: CallContext) => Json | undefined | Promise<Json | undefined>;

/** `engine::traces::list|tree|clear`, `engine::health::check`, `engine::baggage::*` (the console's in console-functions.ts). */
export function registerFunctions(host: ModuleHost, module: string, state: ObservabilityState): void {
  const fn = (id: string, description: string, handler: Handler) =>
    host.registerFunction(module, { id, description }, (data, ctx) => handler(new Input(id, data), ctx));

  fn(
    'engine::traces::list',
    "List root spans kept in memory, newest first: this node's, or with scope 'cluster' every live node's",
    async (input) => {
      const query = spanQuery(input);
      const scope = traceScope(input);
      const store = spanStore(state);
      if (scope === 'node') {
        const { spans, total } = store.list(query);
        return { spans: asJson(spans), total, offset: query.offset, limit: query.limit };
      }
      if (query.offset + query.limit > MAX_TRACES_PAGE)
        throw input.fail(`with scope 'cluster', \`offset\` + \`limit\` must be at most ${MAX_TRACES_PAGE}`);
      const merged = await clusterList(host, store, query, input.fields());
      return asJson({ ...merged, offset: query.offset, limit: query.limit });
    },
  );
  fn(
    'engine::traces::tree',
    "The spans of one trace as trees: this node's, or with scope 'cluster' every live node's, each with its node",
    async (input) => {
      const traceId = input.string('trace_id').toLowerCase();
      const scope = traceScope(input);
      const store = spanStore(state);
      if (scope === 'node') return { roots: asJson(store.tree(traceId)) };
      return asJson(await clusterTree(host, store, traceId));
    },
  );
  answerTraceQueries(host, () => spanStore(state), spanQuery);
  fn('engine::traces::clear', 'Remove every span kept in memory', () => {
    const store = spanStore(state);
    const cleared = store.size;
    store.clear();
    return { success: true, cleared };
  });

  fn('engine::health::check', 'Health of the observability pipeline', () => {
    const { config } = state;
    const component = (enabled: boolean, details: Record<string, Json>) =>
      enabled ? { status: 'healthy', ...details } : { status: 'disabled' };
    return {
      status: 'healthy',
      components: {
        otel: component(config.enabled, {
          exporter: config.exporter,
          service_name: config.serviceName,
          sampling_ratio: config.samplingRatio,
        }),
        metrics: component(config.metricsEnabled, {
          sdk_metrics: state.sdkMetrics.size,
          series_samples: state.console.series.size,
          exporter: config.metricsExporter,
        }),
        alerts: {
          status: 'healthy',
          rules: state.console.alerts.rules.length,
          firing: state.console.alerts.firingCount,
        },
        logs: component(config.logsEnabled, {
          count: state.logs.size,
          capacity: config.logsMaxCount,
          exporter: config.logsExporter,
        }),
        spans: component(state.spans !== undefined, { count: state.spans?.size ?? 0, capacity: config.memoryMaxSpans }),
        telemetry: { status: 'healthy', ingested: state.telemetry.ingested, dropped: state.telemetry.dropped },
      },
      timestamp: Date.now(),
      version: ENGINE_VERSION,
    };
  });

  // Baggage is what the caller sent with this call; `set` cannot change the caller's own context,
  // it returns the header to send on later calls.
  fn('engine::baggage::get', 'A W3C baggage entry of the current call', (input, ctx) => ({
    value: parseBaggage(ctx.baggage).get(input.string('key')) ?? null,
  }));
  fn('engine::baggage::get_all', 'Every W3C baggage entry of the current call', (_input, ctx) => ({
    baggage: Object.fromEntries(parseBaggage(ctx.baggage)),
  }));
  fn('engine::baggage::set', "The current call's baggage with one entry set, as a header to send on", (input, ctx) => {
    const key = input.string('key');
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key))
      throw input.fail(
        `field \`key\` must be a W3C baggage token (letters, digits and !#$%&'*+-.^_\`|~), got "${key}"`,
      );
    const entries = parseBaggage(ctx.baggage);
    entries.set(key, input.string('value'));
    return { baggage: formatBaggage(entries) };
  });
}

export function spanStore(state: ObservabilityState): SpanStore {
  if (state.spans) return state.spans;
  const why = state.config.enabled
    ? `the exporter is "${state.config.exporter}"`
    : 'tracing is disabled (enabled: false)';
  throw new EngineError(
    MEMORY_EXPORTER_NOT_ENABLED,
    `Spans are not kept in memory: ${why}. Set iii-observability exporter to "memory" or "both" to query traces.`,
  );
}

function spanQuery(input: Input): SpanQuery {
  const limit = input.optU32('limit') ?? DEFAULT_TRACES_PAGE;
  if (limit > MAX_TRACES_PAGE) throw input.fail(`field \`limit\` must be at most ${MAX_TRACES_PAGE}`);
  const ids = [
    ...(input.optStringArray('trace_ids') ?? []),
    ...(input.has('trace_id') ? [input.string('trace_id')] : []),
  ];
  const query: SpanQuery = {
    serviceName: input.optString('service_name'),
    name: input.optString('name'),
    minDurationMs: input.optNumber('min_duration_ms'),
    maxDurationMs: input.optNumber('max_duration_ms'),
    startTime: input.optNumber('start_time'),
    endTime: input.optNumber('end_time'),
    includeInternal: input.optBoolean('include_internal') ?? false,
    searchAllSpans: input.optBoolean('search_all_spans') ?? false,
    sortBy: oneOf(input, 'sort_by', ['start_time', 'duration', 'name'] as const) ?? 'start_time',
    sortOrder: oneOf(input, 'sort_order', ['asc', 'desc'] as const) ?? 'desc',
    offset: input.optU32('offset') ?? 0,
    limit,
  };
  if (ids.length > 0) query.traceIds = new Set(ids.map((id) => id.toLowerCase()));
  const attributes = attributePairs(input, 'attributes', false);
  if (attributes !== undefined) query.attributes = attributes as Array<[string, string]>;
  const excluded = attributePairs(input, 'exclude_attributes', true);
  if (excluded !== undefined) query.excludeAttributes = excluded;
  const status = oneOf(input, 'status', ['ok', 'error', 'unset'] as const);
  if (status !== undefined) query.status = status;
  return query;
}

/**
 * `[[key, value], ...]` (values compared as text), or `{key: value}`; with `keysAlone`, a bare
 * `key` (or `[key]`) means "has the attribute".
 */
function attributePairs(input: Input, key: string, keysAlone: boolean): Array<[string, string?]> | undefined {
  const raw = input.raw(key);
  if (raw === undefined) return undefined;
  const text = (v: Json) => (typeof v === 'string' ? v : JSON.stringify(v));
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw))
    return Object.entries(raw).map(([k, v]) => [k, text(v ?? null)]);
  const shape = keysAlone ? '[[key, value], ...], [key, ...] or {key: value}' : '[[key, value], ...] or {key: value}';
  if (!Array.isArray(raw)) throw input.fail(`field \`${key}\` must be ${shape}`);
  return raw.map((item) => {
    if (keysAlone && typeof item === 'string') return [item];
    if (
      !Array.isArray(item) ||
      typeof item[0] !== 'string' ||
      item.length > 2 ||
      (item.length === 1 && !keysAlone) ||
      item.length === 0
    ) {
      throw input.fail(`field \`${key}\` must be ${shape}`);
    }
    return item.length === 1 ? [item[0]] : [item[0], text(item[1] ?? null)];
  });
}

export function oneOf<T extends string>(input: Input, key: string, allowed: readonly T[]): T | undefined {
  const value = input.optString(key)?.toLowerCase();
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T))
    throw input.fail(`field \`${key}\` must be one of ${allowed.join(', ')}; got "${value}"`);
  return value as T;
}
