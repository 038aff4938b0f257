import { fmtInt, fmtMs, table } from '../bench/lib/markdown';

/** One metric of k6's `--summary-export` JSON. Trends carry the stats named by `--summary-trend-stats`. */
export interface K6Metric {
  count?: number;
  rate?: number;
  value?: number;
  avg?: number;
  med?: number;
  max?: number;
  'p(95)'?: number;
  'p(99)'?: number;
  passes?: number;
  fails?: number;
  /** Threshold expression -> whether it was crossed (`true` = failed), k6's summary-export form. */
  thresholds?: Record<string, boolean>;
}

export interface K6Summary {
  metrics: Record<string, K6Metric>;
}

export interface ThresholdResult {
  metric: string;
  expression: string;
  passed: boolean;
}

/** A check the runner makes across two metrics, which k6 thresholds cannot express. */
export interface DerivedCheck {
  name: string;
  value: string;
  passed: boolean;
}

export interface ScriptOutcome {
  script: string;
  exitCode: number;
  /** Wall time of the k6 process, s. */
  seconds: number;
  summary: K6Summary | undefined;
  thresholds: ThresholdResult[];
  derived: DerivedCheck[];
}

export function thresholdResults(summary: K6Summary): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const [metric, data] of Object.entries(summary.metrics)) {
    for (const [expression, crossed] of Object.entries(data.thresholds ?? {}))
      out.push({ metric, expression, passed: !crossed });
  }
  // k6 writes them in no stable order; sorted, two summaries diff cleanly.
  return out.sort((a, b) => `${a.metric} ${a.expression}`.localeCompare(`${b.metric} ${b.expression}`));
}

function count(summary: K6Summary, metric: string): number {
  return summary.metrics[metric]?.count ?? 0;
}

/** Every item reaches every subscriber once; every enqueued job is handled. */
export function derivedChecks(script: string, summary: K6Summary): DerivedCheck[] {
  if (script === 'stream-fanout') {
    const expected = count(summary, 'stream_published') * count(summary, 'stream_subscribers_joined');
    const delivered = count(summary, 'stream_deliveries');
    return [
      {
        name: 'fan-out (deliveries / published x subscribers)',
        value: `${fmtInt(delivered)} / ${fmtInt(expected)}`,
        passed: expected > 0 && delivered === expected,
      },
    ];
  }
  if (script === 'queue') {
    const enqueued = count(summary, 'queue_enqueued');
    const handled = count(summary, 'queue_handled');
    return [
      {
        name: 'jobs handled / enqueued',
        value: `${fmtInt(handled)} / ${fmtInt(enqueued)}`,
        passed: enqueued > 0 && handled === enqueued,
      },
    ];
  }
  return [];
}

/** The figures worth a line per script: rates, counts and latency percentiles (ms). */
const HEADLINE: Record<string, string[]> = {
  smoke: ['http_reqs', 'http_req_duration', 'http_req_failed', 'checks'],
  'http-trigger': ['http_reqs', 'http_req_duration', 'http_req_failed', 'dropped_iterations'],
  'ws-workers': ['ws_calls', 'ws_rtt', 'ws_call_errors', 'ws_served'],
  'stream-fanout': [
    'stream_published',
    'stream_deliveries',
    'stream_delivery_ms',
    'stream_publish_errors',
    'stream_subscribers_joined',
  ],
  queue: [
    'queue_enqueued',
    'queue_enqueue_ms',
    'queue_enqueue_errors',
    'queue_handled',
    'queue_handled_per_s',
    'queue_wait_p95_ms',
    'queue_drain_ms',
  ],
};

function describe(metric: K6Metric): string[] {
  if (metric['p(95)'] !== undefined) {
    return [
      '',
      fmtMs(metric.med ?? NaN),
      fmtMs(metric['p(95)']),
      fmtMs(metric['p(99)'] ?? NaN),
      fmtMs(metric.max ?? NaN),
    ];
  }
  if (metric.passes !== undefined || (metric.rate !== undefined && metric.count === undefined)) {
    return [`${((metric.value ?? metric.rate ?? 0) * 100).toFixed(2)} %`, '', '', '', ''];
  }
  if (metric.count !== undefined) return [`${fmtInt(metric.count)} (${fmtInt(metric.rate ?? 0)}/s)`, '', '', '', ''];
  return [fmtInt(metric.value ?? NaN), '', '', '', ''];
}

export function renderMarkdown(
  outcomes: ScriptOutcome[],
  context: { profile: string; nodes: number; date: string; k6: string },
): string {
  const lines = [
    `# Load test results (${context.profile})`,
    '',
    `${context.date}, ${context.k6}, ${context.nodes} engine nodes on loopback sharing one private redis-server`,
    '(`config/cluster.yaml`), k6 on the same machine. Written by `loadtest/run.ts`; latencies in ms.',
    '',
    table(
      ['script', 'k6 exit', 'thresholds', 'checks across metrics', 'time (s)'],
      outcomes.map((o) => [
        o.script,
        o.exitCode,
        `${o.thresholds.filter((t) => t.passed).length}/${o.thresholds.length} passed`,
        o.derived.length === 0
          ? ''
          : o.derived.map((d) => `${d.passed ? 'ok' : 'FAILED'}: ${d.name} ${d.value}`).join('; '),
        o.seconds.toFixed(1),
      ]),
      ['l', 'r', 'l', 'l', 'r'],
    ),
  ];
  for (const o of outcomes) {
    lines.push('', `## ${o.script}`, '');
    if (!o.summary) {
      lines.push(`k6 wrote no summary (exit ${o.exitCode}); see loadtest/results/${o.script}.log.`);
      continue;
    }
    const rows = (HEADLINE[o.script] ?? [])
      .filter((name) => o.summary!.metrics[name])
      .map((name) => [name, ...describe(o.summary!.metrics[name]!)]);
    lines.push(
      table(['metric', 'value (count: per s of the whole k6 run)', 'median', 'p95', 'p99', 'max'], rows, [
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
      ]),
    );
    lines.push(
      '',
      table(
        ['threshold', 'result'],
        o.thresholds.map((t) => [`${t.metric}: ${t.expression}`, t.passed ? 'passed' : 'FAILED']),
        ['l', 'l'],
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
