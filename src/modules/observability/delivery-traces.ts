import { randomBytes } from 'node:crypto';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import type { ModuleHost } from '../../engine/module';

/** Trace ids of recent trigger deliveries remembered, oldest forgotten first. */
const DELIVERY_TRACES_KEPT = 1024;

/**
 * Deliveries of the `log` and `trace` triggers, each in a trace of its own. A handler that
 * propagates trace context (the SDKs do when their OTel is on) makes its spans and logs carry
 * that trace id, which lets the triggers ignore them instead of feeding themselves.
 */
export class DeliveryTraces {
  private readonly traceIds = new Set<string>();

  constructor(private readonly host: ModuleHost) {}

  has(traceId: string | null): boolean {
    return traceId !== null && this.traceIds.has(traceId);
  }

  /** Calls the binding's function with `payload` and its metadata; the result is dropped. */
  deliver(trigger: TriggerEntry, payload: Json): void {
    const traceId = randomBytes(16).toString('hex');
    this.traceIds.add(traceId);
    if (this.traceIds.size > DELIVERY_TRACES_KEPT) this.traceIds.delete(this.traceIds.values().next().value as string);
    const request = {
      functionId: trigger.function_id,
      data: payload,
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    };
    this.host
      .invoke(trigger.metadata === undefined ? request : { ...request, metadata: trigger.metadata })
      .catch((err: unknown) =>
        this.host.logger.warn(
          { err, trigger: trigger.id, functionId: trigger.function_id },
          `${trigger.trigger_type} trigger handler failed`,
        ),
      );
  }
}
