import type { TelemetrySignal } from '../../protocol/codec';
import type { CallRequest, CallSpan } from '../../router/router';
import type { EngineModule, ModuleHost } from '../../engine/module';
import { Input } from '../input';
import { needsRestart } from '../reconfigure';
import type { WorkerEvent } from '../../engine/workers';
import type { Json } from '../../protocol/messages';
import { originOf, type AlertAction } from './alerts';
import { keepsSpansInMemory, readConfig, type ObservabilityConfig } from './config';
import { registerConsoleFunctions } from './console-functions';
import { ClusterFigures } from './cluster-figures';
import { ConsoleMetrics } from './console-metrics';
import { EngineSnapshot } from './engine-snapshot';
import { isSeriesMetric, SERIES_METRICS } from './metric-series';
import { DeliveryTraces } from './delivery-traces';
import { registerFunctions, type ObservabilityState } from './functions';
import { asJson, nowUnixNano } from './json';
import { registerLogFunctions } from './log-functions';
import { LogStore, type StoredLog } from './log-store';
import { SdkMetrics } from './sdk-metrics';
import { SpanStore } from './span-store';
import type { StoredSpan } from './stored-span';
import { parseLogs, parseMetrics, parseTraces, type Parsed } from './telemetry-ingest';
import { OtlpSignals } from './otlp-signals';
import { CallTracer, engineResource } from './tracing';
import { LogTriggers, TRACE_TICK_MS, TraceTriggers } from './triggers';
import { WorkerMetrics } from './worker-metrics';

export const OBSERVABILITY_MODULE = 'iii-observability';
/** An alert webhook gets this long to answer, in milliseconds. */
const ALERT_WEBHOOK_TIMEOUT_MS = 10_000;

/**
 * `iii-observability` (iii-modules.md §11): an OpenTelemetry span per call (memory ring and/or
 * OTLP gRPC), the log ring fed by `engine::log::*` and SDK telemetry frames, `log` and `trace`
 * trigger types, and the trace/log/metrics/health/baggage functions.
 */
/** Keys applied without a restart. */
const LIVE_KEYS = ['sampling_ratio', 'logs_sampling_ratio', 'logs_console_output', 'level'] as const;

export class ObservabilityModule implements EngineModule {
  readonly name = OBSERVABILITY_MODULE;
  private host: ModuleHost | undefined;
  private state: ObservabilityState | undefined;
  private tracer: CallTracer | undefined;
  private figures: ClusterFigures | undefined;
  private otlp: OtlpSignals | undefined;
  private logTriggers: LogTriggers | undefined;
  private traceTriggers: TraceTriggers | undefined;
  private readonly workerMetrics = new WorkerMetrics();
  private readonly onTelemetry = (signal: TelemetrySignal, body: Buffer, workerId: string | undefined) =>
    this.ingest(signal, body, workerId);
  private readonly onWorker = (event: WorkerEvent) => {
    if (event.event === 'worker_disconnected') this.workerMetrics.forget(event.worker_id);
  };

  constructor(private block: Record<string, unknown>) {}

  /**
   * Hot reload: the sampling ratios and console output apply at once (`level` too: the engine
   * sets the log level itself, see Engine.applySettings); the rest needs a restart.
   */
  async reconfigure(block: Record<string, unknown>): Promise<string[]> {
    const restart = needsRestart(this.block, block, LIVE_KEYS);
    const state = this.state;
    if (state && this.host) {
      const next = readConfig(block, this.host.config.modules.observability?.config ?? {}, process.env);
      state.config.samplingRatio = next.samplingRatio;
      state.config.logsSamplingRatio = next.logsSamplingRatio;
      state.config.logsConsoleOutput = next.logsConsoleOutput;
      this.tracer?.setSamplingRatio(next.samplingRatio);
    }
    this.block = { ...this.block, ...Object.fromEntries(LIVE_KEYS.map((key) => [key, block[key]])) };
    return restart;
  }

  async start(host: ModuleHost): Promise<void> {
    this.host = host;
    const written = host.config.modules.observability?.config ?? {};
    const config: ObservabilityConfig = readConfig(this.block, written, process.env);
    const spans = keepsSpansInMemory(config) ? new SpanStore(config.memoryMaxSpans) : undefined;
    const exportFailed = (err: unknown) =>
      host.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'OTLP span export failed');
    if (config.enabled)
      this.tracer = new CallTracer(
        config,
        host.nodeId,
        spans ? (span) => this.spanEnded(span) : undefined,
        process.env,
        exportFailed,
      );
    const snapshot = new EngineSnapshot(host.metrics, host.registry, host.nodeId);
    const state: ObservabilityState = {
      config,
      spans,
      logs: new LogStore(config.logsMaxCount, config.logsRetentionSeconds * 1000),
      sdkMetrics: new SdkMetrics(config.metricsMaxCount),
      telemetry: { ingested: { OTLP: 0, LOGS: 0, MTRC: 0 }, dropped: { OTLP: 0, LOGS: 0, MTRC: 0 } },
      console: new ConsoleMetrics(config, snapshot, host.logger, (rule, alert) => this.alertAction(rule.action, alert)),
      sampler: this.tracer?.sampler,
    };
    this.state = state;
    const deliveries = new DeliveryTraces(host);
    this.logTriggers = new LogTriggers(deliveries);
    this.traceTriggers = new TraceTriggers(deliveries);

    registerLogFunctions(host, this.name, config, state.logs, { record: (log) => this.recordLog(log) });
    registerFunctions(host, this.name, state);
    registerConsoleFunctions(host, this.name, state);
    const figures = new ClusterFigures(snapshot, host.nodeId, host.logger);
    this.figures = figures;
    host.registerFunction(
      this.name,
      {
        id: 'engine::functions::stats',
        description:
          "Per-function calls, errors, rate and p50/p99: the cluster's (every live node's summary merged, with a row per node) or, with scope 'node', this node's",
      },
      async (data) => {
        const input = new Input('engine::functions::stats', data);
        const scope = input.optString('scope') ?? 'cluster';
        if (scope !== 'cluster' && scope !== 'node') throw input.fail("field `scope` must be 'cluster' or 'node'");
        return asJson(await figures.stats(scope));
      },
    );
    await host.registerTriggerType(
      this.name,
      {
        id: 'log',
        description: 'Fires for every stored log record at or above `level` (all, trace, debug, info, warn, error)',
        trigger_request_format: LOG_CONFIG_FORMAT,
      },
      this.logTriggers,
    );
    await host.registerTriggerType(
      this.name,
      {
        id: 'trace',
        description: `Fires about every ${TRACE_TICK_MS} ms with {trace_ids} of traces that had span activity`,
        trigger_request_format: TRACE_CONFIG_FORMAT,
      },
      this.traceTriggers,
    );
    host.events.on('telemetry', this.onTelemetry);
    host.events.on('worker', this.onWorker);
    this.warnAtStart(config);
    await state.console.start();
    await figures.start(host.config.cluster);
    this.otlp = OtlpSignals.start(config, engineResource(config, host.nodeId), state.console, host.logger, process.env);
  }

  async stop(): Promise<void> {
    this.host?.events.off('telemetry', this.onTelemetry);
    this.host?.events.off('worker', this.onWorker);
    this.state?.console.stop();
    await this.figures?.stop();
    this.figures = undefined;
    await this.otlp?.shutdown();
    this.otlp = undefined;
    this.traceTriggers?.stop();
    await this.tracer?.shutdown();
    this.tracer = undefined;
  }

  /** The router's tracing hook: the span of one call, or undefined when tracing is off. */
  startSpan(request: CallRequest): CallSpan | undefined {
    return this.tracer?.start(request);
  }

  /** What the config asks for and this module cannot do (the config loader warns about the rest). */
  private warnAtStart(config: ObservabilityConfig): void {
    const logger = this.host!.logger;
    for (const rule of config.alerts) {
      if (!isSeriesMetric(rule.metric)) {
        logger.warn(
          { alert: rule.name, metric: rule.metric },
          `iii-observability: alert "${rule.name}" names metric "${rule.metric}", which is not in the engine series (${SERIES_METRICS.join(', ')}); it never fires`,
        );
      }
    }
  }

  /** The latest resource metrics the worker's SDK reported to this node (`engine::workers::info`). */
  latestWorkerMetrics(workerId: string): Record<string, Json> | undefined {
    return this.workerMetrics.of(workerId);
  }

  /**
   * An alert's `function` action (the alert is the payload) or `webhook` action (the alert POSTed
   * as JSON, ALERT_WEBHOOK_TIMEOUT_MS at most, redirects not followed); a failure is logged.
   */
  private alertAction(action: AlertAction, alert: Json): void {
    const logger = this.host!.logger;
    if (action.type === 'function' && action.path) {
      this.host!.invoke({ functionId: action.path, data: alert }).catch((err: unknown) =>
        logger.warn({ err, functionId: action.path }, 'alert function failed'),
      );
    } else if (action.type === 'webhook' && action.url) {
      fetch(action.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alert),
        redirect: 'manual',
        signal: AbortSignal.timeout(ALERT_WEBHOOK_TIMEOUT_MS),
      })
        .then(async (response) => {
          await response.arrayBuffer().catch(() => undefined);
          if (!response.ok)
            logger.warn({ url: originOf(action.url), status: response.status }, 'alert webhook answered an error');
        })
        .catch((err: unknown) =>
          logger.warn(
            { url: originOf(action.url), err: err instanceof Error ? err.message : String(err) },
            'alert webhook failed',
          ),
        );
    }
  }

  private spanEnded(span: StoredSpan): void {
    this.state!.spans!.add(span);
    const triggers = this.traceTriggers!;
    if (!triggers.active) return;
    triggers.spanEnded(span);
  }

  private recordLog(log: StoredLog): void {
    if (this.state!.config.logsExporter !== 'otlp') this.state!.logs.add(log);
    this.otlp?.log(log);
    this.logTriggers!.publish(log);
  }

  /** One SDK telemetry frame; a malformed one is counted and dropped, never thrown. */
  private ingest(signal: TelemetrySignal, body: Buffer, workerId: string | undefined): void {
    const state = this.state!;
    const receivedAt = nowUnixNano();
    let parsed: Parsed<unknown>;
    try {
      if (signal === 'OTLP') {
        const spans = parseTraces(body);
        if (state.spans) for (const span of spans.items) this.spanEnded(span);
        parsed = spans;
      } else if (signal === 'LOGS') {
        const logs = parseLogs(body, receivedAt);
        if (state.config.logsEnabled) for (const log of logs.items) this.recordLog(log);
        parsed = logs;
      } else {
        const metrics = parseMetrics(body, receivedAt, workerId);
        if (state.config.metricsEnabled) {
          for (const metric of metrics.items) {
            state.sdkMetrics.put(metric);
            this.workerMetrics.record(metric);
          }
        }
        parsed = metrics;
      }
    } catch (err) {
      this.dropped(signal, 1, err);
      return;
    }
    state.telemetry.ingested[signal] += parsed.items.length;
    if (parsed.skipped > 0) this.dropped(signal, parsed.skipped, 'malformed records in an otherwise valid frame');
  }

  private dropped(signal: TelemetrySignal, count: number, reason: unknown): void {
    this.state!.telemetry.dropped[signal] += count;
    this.host!.metrics.telemetryDropped.inc({ signal }, count);
    this.host!.logger.debug(
      { signal, count, reason: reason instanceof Error ? reason.message : reason },
      'telemetry dropped',
    );
  }
}

const LOG_CONFIG_FORMAT = {
  type: 'object',
  properties: {
    level: {
      type: 'string',
      enum: ['all', 'trace', 'debug', 'info', 'warn', 'error'],
      description: 'Minimum severity (default all)',
    },
  },
};

const TRACE_CONFIG_FORMAT = {
  type: 'object',
  properties: {
    service_name: { type: 'string', description: 'Only spans of this service (case-insensitive)' },
    status: { type: 'string', enum: ['ok', 'error', 'unset'], description: 'Only spans with this status' },
  },
};
