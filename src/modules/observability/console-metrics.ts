import type { Logger } from '../../observability/logger';
import { AlertRules, type AlertDispatch } from './alerts';
import type { ObservabilityConfig } from './config';
import type { EngineMetricsView, EngineSnapshot } from './engine-snapshot';
import { MetricSeries, MIN_SAMPLE_GAP_MS, SAMPLE_INTERVAL_MS } from './metric-series';

/**
 * The engine metric series and its alert rules, on one 10 s tick: sample, then evaluate.
 * Queries sample too (at most once per MIN_SAMPLE_GAP_MS) so that what they return is current;
 * `engine::alerts::evaluate` always samples first.
 */
export class ConsoleMetrics {
  readonly series: MetricSeries;
  readonly alerts: AlertRules;
  private timer: NodeJS.Timeout | undefined;
  /** Sampling is async (prom-client reads); one at a time keeps the baseline consistent. */
  private sampling: Promise<EngineMetricsView> | undefined;

  constructor(
    config: ObservabilityConfig,
    private readonly snapshot: EngineSnapshot,
    private readonly logger: Logger,
    dispatch: AlertDispatch,
  ) {
    this.series = new MetricSeries(config.metricsRetentionSeconds * 1000);
    this.alerts = new AlertRules(config.alerts, this.series, logger, dispatch);
  }

  async start(): Promise<void> {
    await this.sample(true);
    this.timer = setInterval(() => {
      this.sample(true)
        .then(() => this.alerts.evaluate())
        .catch((err: unknown) => this.logger.warn({ err }, 'engine metrics sample failed'));
    }, SAMPLE_INTERVAL_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.snapshot.stop();
  }

  /** The current view; recorded into the series when `force`d or the newest sample is old enough. */
  async sample(force = false): Promise<EngineMetricsView> {
    while (this.sampling) await this.sampling.catch(() => undefined);
    const newest = this.series.newest;
    const record = force || newest === undefined || Date.now() - newest.timestamp_ms >= MIN_SAMPLE_GAP_MS;
    const run = this.snapshot.read(record).then(({ view, sample }) => {
      if (record) this.series.add(sample);
      return view;
    });
    this.sampling = run;
    try {
      return await run;
    } finally {
      if (this.sampling === run) this.sampling = undefined;
    }
  }

  /** `engine::alerts::evaluate`: a fresh sample, then every rule. */
  async evaluate(): Promise<string[]> {
    await this.sample(true);
    return this.alerts.evaluate();
  }
}
