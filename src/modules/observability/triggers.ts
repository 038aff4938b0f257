import type { TriggerProvider } from '../../engine/triggers';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { Input } from '../input';
import { asJson } from './json';
import type { DeliveryTraces } from './delivery-traces';
import { LOG_LEVELS, SEVERITY, type LogLevel, type StoredLog } from './log-store';
import { isInternalSpanName } from './span-store';
import type { SpanStatusText, StoredSpan } from './stored-span';

/** Span activity is collected for this long before a `trace` trigger fires, in milliseconds. */
export const TRACE_TICK_MS = 300;
/** Distinct trace ids one `trace` tick carries at most; more in the same window are dropped. */
export const MAX_TRACE_IDS_PER_TICK = 1000;

function configInput(type: string, config: Json): Input {
  return new Input(`${type} trigger config`, config ?? {});
}

/**
 * Trigger type `log` {level?}: fires for every stored log record at or above `level`
 * (`all`, the default, takes everything). The original matches the level exactly although its
 * schema says "minimum"; we do what the schema says. Records logged in a delivery's trace (by a
 * handler that propagates trace context) are not delivered again.
 */
export class LogTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { trigger: TriggerEntry; minSeverity: number }>();

  constructor(private readonly deliveries: DeliveryTraces) {}

  registerTrigger(trigger: TriggerEntry): void {
    const input = configInput('log', trigger.config);
    const level = input.optString('level')?.toLowerCase() ?? 'all';
    if (level !== 'all' && !LOG_LEVELS.includes(level as LogLevel)) {
      throw input.fail(`field \`level\` must be one of all, ${LOG_LEVELS.join(', ')}; got "${level}"`);
    }
    this.bindings.set(trigger.id, { trigger, minSeverity: level === 'all' ? 0 : SEVERITY[level as LogLevel] });
  }

  unregisterTrigger(trigger: TriggerEntry): void {
    this.bindings.delete(trigger.id);
  }

  publish(record: StoredLog): void {
    if (this.bindings.size === 0 || this.deliveries.has(record.trace_id)) return;
    for (const { trigger, minSeverity } of this.bindings.values()) {
      if (record.severity_number >= minSeverity) this.deliveries.deliver(trigger, asJson(record));
    }
  }
}

interface TraceBinding {
  trigger: TriggerEntry;
  serviceName?: string;
  status?: SpanStatusText;
  pending: Set<string>;
}

/**
 * Trigger type `trace` {service_name?, status?} (both case-insensitive, ANDed): a debounced
 * "traces changed" tick `{trace_ids}` listing the traces with ended spans since the last tick.
 * Spans of `engine::*` functions and of the trigger deliveries (each runs in a trace of its own)
 * do not count, so a handler does not feed itself.
 */
export class TraceTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, TraceBinding>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deliveries: DeliveryTraces) {}

  registerTrigger(trigger: TriggerEntry): void {
    const input = configInput('trace', trigger.config);
    const binding: TraceBinding = { trigger, pending: new Set() };
    const serviceName = input.optString('service_name');
    if (serviceName !== undefined) binding.serviceName = serviceName.toLowerCase();
    const status = input.optString('status')?.toLowerCase();
    if (status !== undefined) {
      if (status !== 'ok' && status !== 'error' && status !== 'unset')
        throw input.fail(`field \`status\` must be one of ok, error, unset; got "${status}"`);
      binding.status = status;
    }
    this.bindings.set(trigger.id, binding);
  }

  unregisterTrigger(trigger: TriggerEntry): void {
    this.bindings.delete(trigger.id);
  }

  get active(): boolean {
    return this.bindings.size > 0;
  }

  spanEnded(span: StoredSpan): void {
    if (isInternalSpanName(span.name) || this.deliveries.has(span.trace_id)) return;
    for (const binding of this.bindings.values()) {
      if (binding.serviceName !== undefined && binding.serviceName !== span.service_name.toLowerCase()) continue;
      if (binding.status !== undefined && binding.status !== span.status) continue;
      if (binding.pending.size < MAX_TRACE_IDS_PER_TICK) binding.pending.add(span.trace_id);
      this.timer ??= setTimeout(() => this.tick(), TRACE_TICK_MS).unref();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.timer = undefined;
    for (const binding of this.bindings.values()) {
      if (binding.pending.size === 0) continue;
      const traceIds = [...binding.pending];
      binding.pending.clear();
      this.deliveries.deliver(binding.trigger, { trace_ids: traceIds });
    }
  }
}
