import { isSpanContextValid, trace, TraceFlags, type Context } from '@opentelemetry/api';
import {
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-base';

/** `iii-observability.sampling` as read (iii-modules.md §11.1). */
export interface SamplingConfig {
  /** Rate of spans no rule matches; `sampling_ratio` when unset. */
  default?: number;
  /** Follow the caller's sampled flag when there is a parent (default true). */
  parentBased: boolean;
  rules: SamplingRule[];
  /** New traces sampled per second at most (token bucket); unlimited when unset. */
  maxTracesPerSecond?: number;
}

export interface SamplingRule {
  /** Glob (`*`, `?`) on the span name, which is the function id for the engine's spans. */
  operation?: string;
  /** Glob on the engine's `service_name`. */
  service?: string;
  rate: number;
}

export function readSampling(value: unknown): SamplingConfig {
  const block = isObject(value) ? value : {};
  const config: SamplingConfig = {
    parentBased: block.parent_based !== false,
    rules: (Array.isArray(block.rules) ? block.rules : []).filter(isObject).map((r) => {
      const rule: SamplingRule = { rate: clamp(r.rate) };
      if (typeof r.operation === 'string') rule.operation = r.operation;
      if (typeof r.service === 'string') rule.service = r.service;
      return rule;
    }),
  };
  if (typeof block.default === 'number') config.default = clamp(block.default);
  const limit = isObject(block.rate_limit) ? block.rate_limit.max_traces_per_second : undefined;
  if (typeof limit === 'number' && limit > 0) config.maxTracesPerSecond = limit;
  return config;
}

/** `*` any run of characters, `?` one character; everything else literal; the whole name must match. */
export function globMatcher(pattern: string): (text: string) => boolean {
  if (!/[*?]/.test(pattern)) return (text) => text === pattern;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const re = new RegExp(`^${source}$`, 's');
  return (text) => re.test(text);
}

interface CompiledRule {
  rule: SamplingRule;
  operation: (name: string) => boolean;
  service: boolean;
  sampler: Sampler;
}

/**
 * The engine tracer's sampler: the first rule whose `operation` matches the span name (the
 * function id) and whose `service` matches the engine's service name chooses the rate; no rule,
 * the `default` (or `sampling_ratio`). With `parent_based`, a span with a parent follows the
 * parent's sampled flag instead. Rates are trace-id ratios, so every node decides a trace alike.
 * `rate_limit` caps the new traces sampled per second, on this node.
 */
export class RuleSampler implements Sampler {
  private readonly rules: CompiledRule[];
  private fallback: Sampler;
  private fallbackRate: number;
  private tokens: number;
  private refilledAtMs = Date.now();

  constructor(
    private readonly config: SamplingConfig,
    serviceName: string,
    samplingRatio: number,
  ) {
    this.rules = config.rules.map((rule) => ({
      rule,
      operation: rule.operation === undefined ? () => true : globMatcher(rule.operation),
      service: rule.service === undefined || globMatcher(rule.service)(serviceName),
      sampler: ratioSampler(rule.rate),
    }));
    this.fallbackRate = config.default ?? samplingRatio;
    this.fallback = ratioSampler(this.fallbackRate);
    this.tokens = config.maxTracesPerSecond ?? 0;
  }

  /** Hot reload of `sampling_ratio`: the fallback rate, unless `sampling.default` sets it. */
  setSamplingRatio(ratio: number): void {
    if (this.config.default !== undefined) return;
    this.fallbackRate = ratio;
    this.fallback = ratioSampler(ratio);
  }

  /** What `engine::sampling::rules` reports. */
  describe(): {
    default: number;
    parent_based: boolean;
    rules: SamplingRule[];
    rate_limit: { max_traces_per_second: number } | null;
  } {
    return {
      default: this.fallbackRate,
      parent_based: this.config.parentBased,
      rules: this.config.rules,
      rate_limit:
        this.config.maxTracesPerSecond === undefined ? null : { max_traces_per_second: this.config.maxTracesPerSecond },
    };
  }

  shouldSample(context: Context, traceId: string, spanName: string, ...rest: unknown[]): SamplingResult {
    const parent = trace.getSpanContext(context);
    const hasParent = parent !== undefined && isSpanContextValid(parent);
    if (this.config.parentBased && hasParent) {
      return {
        decision:
          parent.traceFlags & TraceFlags.SAMPLED ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD,
      };
    }
    const match = this.rules.find((r) => r.service && r.operation(spanName));
    const sampler = match?.sampler ?? this.fallback;
    const result = (sampler.shouldSample as (...args: unknown[]) => SamplingResult)(
      context,
      traceId,
      spanName,
      ...rest,
    );
    if (result.decision !== SamplingDecision.RECORD_AND_SAMPLED || hasParent || this.takeToken()) return result;
    return { decision: SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `RuleSampler{rules=${this.rules.length}, default=${this.fallbackRate}, parentBased=${this.config.parentBased}}`;
  }

  /** One new trace from the per-second budget; always true without `rate_limit`. */
  private takeToken(): boolean {
    const limit = this.config.maxTracesPerSecond;
    if (limit === undefined) return true;
    const now = Date.now();
    this.tokens = Math.min(limit, this.tokens + ((now - this.refilledAtMs) / 1000) * limit);
    this.refilledAtMs = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

function ratioSampler(rate: number): Sampler {
  if (rate >= 1)
    return { shouldSample: () => ({ decision: SamplingDecision.RECORD_AND_SAMPLED }), toString: () => 'AlwaysOn' };
  if (rate <= 0)
    return { shouldSample: () => ({ decision: SamplingDecision.NOT_RECORD }), toString: () => 'AlwaysOff' };
  return new TraceIdRatioBasedSampler(rate);
}

function clamp(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
