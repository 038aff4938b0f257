import type { Logger } from '../../observability/logger';
import type { Json } from '../../protocol/messages';
import { isSeriesMetric, type MetricSeries } from './metric-series';

/** Canonical operator names (iii-modules.md §11.1); the YAML symbols map onto them. */
export type AlertOperator =
  'greaterthan' | 'greaterthanorequal' | 'lessthan' | 'lessthanorequal' | 'equal' | 'notequal';

const OPERATORS: Record<string, AlertOperator> = {
  '>': 'greaterthan',
  '>=': 'greaterthanorequal',
  '<': 'lessthan',
  '<=': 'lessthanorequal',
  '==': 'equal',
  '!=': 'notequal',
};

const COMPARE: Record<AlertOperator, (value: number, threshold: number) => boolean> = {
  greaterthan: (v, t) => v > t,
  greaterthanorequal: (v, t) => v >= t,
  lessthan: (v, t) => v < t,
  lessthanorequal: (v, t) => v <= t,
  equal: (v, t) => v === t,
  notequal: (v, t) => v !== t,
};

const DEFAULT_WINDOW_SECONDS = 60;
const DEFAULT_COOLDOWN_SECONDS = 60;

export type AlertAction = { type: 'log' } | { type: 'webhook'; url: string } | { type: 'function'; path: string };

export interface AlertRule {
  name: string;
  metric: string;
  threshold: number;
  operator: AlertOperator;
  windowSeconds: number;
  cooldownSeconds: number;
  enabled: boolean;
  action: AlertAction;
}

export type AlertStatus = 'ok' | 'firing' | 'no_data' | 'disabled' | 'unknown_metric';

interface AlertState {
  status: AlertStatus;
  value: number | null;
  lastEvaluatedMs: number | null;
  /** When the condition last became true (unix ms); null while ok. */
  firingSinceMs: number | null;
  /** When the action last ran (unix ms). */
  lastTriggeredMs: number | null;
  triggerCount: number;
}

/** Rules as written (validated by the schema); a rule without `action` logs. */
export function readAlerts(value: unknown): AlertRule[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null)
    .map((r) => {
      const op = String(r.operator);
      const action = (typeof r.action === 'object' && r.action !== null ? r.action : { type: 'log' }) as Record<
        string,
        unknown
      >;
      return {
        name: String(r.name),
        metric: String(r.metric),
        threshold: Number(r.threshold),
        operator: OPERATORS[op] ?? (op as AlertOperator),
        windowSeconds: typeof r.window_seconds === 'number' ? r.window_seconds : DEFAULT_WINDOW_SECONDS,
        cooldownSeconds: typeof r.cooldown_seconds === 'number' ? r.cooldown_seconds : DEFAULT_COOLDOWN_SECONDS,
        enabled: r.enabled !== false,
        action:
          action.type === 'webhook'
            ? { type: 'webhook', url: String(action.url ?? '') }
            : action.type === 'function'
              ? { type: 'function', path: String(action.path ?? '') }
              : { type: 'log' },
      };
    });
}

/** The `function` and `webhook` actions: deliver `alert` as the rule's action says. */
export type AlertDispatch = (rule: AlertRule, alert: Json) => void;

/**
 * Alert rules over the metric series (metric-series.ts names), evaluated every 10 s and on
 * `engine::alerts::evaluate`. A rule fires while `value operator threshold` holds, the value
 * being a counter's increase over `window_seconds` or a gauge's average over it. Its action runs
 * when it starts firing and again at most once per `cooldown_seconds` while it keeps firing;
 * `log` writes a warning, `function` calls the function `path` with the alert, `webhook` POSTs
 * the alert as JSON to `url` (the dispatcher does both).
 */
export class AlertRules {
  private readonly states = new Map<string, AlertState>();

  constructor(
    readonly rules: readonly AlertRule[],
    private readonly series: MetricSeries,
    private readonly logger: Logger,
    private readonly dispatch: AlertDispatch,
  ) {
    for (const rule of rules) {
      this.states.set(rule.name, {
        status: initialStatus(rule),
        value: null,
        lastEvaluatedMs: null,
        firingSinceMs: null,
        lastTriggeredMs: null,
        triggerCount: 0,
      });
    }
  }

  /** Evaluates every enabled rule against the series as it is now; returns the firing ones' names. */
  evaluate(now = Date.now()): string[] {
    const firing: string[] = [];
    for (const rule of this.rules) {
      const state = this.states.get(rule.name)!;
      if (!rule.enabled || !isSeriesMetric(rule.metric)) continue;
      const value = this.series.windowValue(rule.metric, rule.windowSeconds * 1000, now);
      state.value = value;
      state.lastEvaluatedMs = now;
      if (value === null) {
        state.status = 'no_data';
        state.firingSinceMs = null;
        continue;
      }
      if (!COMPARE[rule.operator](value, rule.threshold)) {
        if (state.status === 'firing')
          this.logger.info({ alert: rule.name, metric: rule.metric, value }, `alert "${rule.name}" resolved`);
        state.status = 'ok';
        state.firingSinceMs = null;
        continue;
      }
      firing.push(rule.name);
      if (state.status !== 'firing') state.firingSinceMs = now;
      state.status = 'firing';
      const cooled = state.lastTriggeredMs === null || now - state.lastTriggeredMs >= rule.cooldownSeconds * 1000;
      if (!cooled) continue;
      state.lastTriggeredMs = now;
      state.triggerCount++;
      this.trigger(rule, value, now);
    }
    return firing;
  }

  get firingCount(): number {
    let n = 0;
    for (const state of this.states.values()) if (state.status === 'firing') n++;
    return n;
  }

  list(): Json[] {
    return this.rules.map((rule) => this.view(rule));
  }

  private trigger(rule: AlertRule, value: number, now: number): void {
    const alert = this.view(rule);
    if (rule.action.type === 'log') {
      this.logger.warn(
        {
          alert: rule.name,
          metric: rule.metric,
          value,
          operator: rule.operator,
          threshold: rule.threshold,
          window_seconds: rule.windowSeconds,
        },
        `alert "${rule.name}" firing: ${rule.metric} = ${value} (${rule.operator} ${rule.threshold} over ${rule.windowSeconds} s)`,
      );
    } else {
      this.dispatch(rule, { ...(alert as Record<string, Json>), triggered_at_ms: now });
    }
  }

  private view(rule: AlertRule): Json {
    const s = this.states.get(rule.name)!;
    return {
      name: rule.name,
      metric: rule.metric,
      operator: rule.operator,
      threshold: rule.threshold,
      window_seconds: rule.windowSeconds,
      cooldown_seconds: rule.cooldownSeconds,
      enabled: rule.enabled,
      // A hook URL's path often is its secret: only the origin leaves the engine.
      action: rule.action.type === 'webhook' ? { type: 'webhook', url: originOf(rule.action.url) } : rule.action,
      state: s.status,
      firing: s.status === 'firing',
      value: s.value,
      last_evaluated_ms: s.lastEvaluatedMs,
      firing_since_ms: s.firingSinceMs,
      last_triggered_ms: s.lastTriggeredMs,
      trigger_count: s.triggerCount,
    };
  }
}

function initialStatus(rule: AlertRule): AlertStatus {
  if (!rule.enabled) return 'disabled';
  return isSeriesMetric(rule.metric) ? 'no_data' : 'unknown_metric';
}

/** A URL's origin (for lists and logs); `(not a URL)` when it does not parse. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}
