import { bindingCall } from '../../engine/binding-groups';
import type { TriggerProvider } from '../../engine/triggers';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';
import { matchesStateTrigger, readStateTriggerConfig, type StateTriggerFilter } from './trigger-config';

export type StateEventType = 'state:created' | 'state:updated' | 'state:deleted';

/** One committed write, as `state` handlers receive it (`old_value` null for creates, `new_value` for deletes). */
export interface StateEvent {
  event_type: StateEventType;
  scope: string;
  key: string;
  old_value: Json;
  new_value: Json;
}

/**
 * The `state` trigger type. Bindings fire on writes made through this node (as the original:
 * not on writes made elsewhere), with the binding's metadata as invocation metadata.
 */
export class StateTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { binding: TriggerEntry; filter: StateTriggerFilter }>();

  /**
   * @param mirrored the adapter reports every change itself (`StateAdapter.watch`): `dispatch`
   *   of the module's own writes is ignored and `mirror` fires instead, for this node's bindings
   *   only (each node of a cluster receives every report).
   */
  constructor(
    private readonly host: ModuleHost,
    private readonly enabled: boolean,
    private readonly mirrored = false,
  ) {}

  registerTrigger(binding: TriggerEntry): void {
    this.bindings.set(binding.id, { binding, filter: readStateTriggerConfig(binding.config) });
  }

  unregisterTrigger(binding: TriggerEntry): void {
    this.bindings.delete(binding.id);
  }

  /**
   * Hands one write to the matching bindings in the background: the writer does not wait. The
   * handlers of one write run one after another (each awaited), in registration order; a
   * failing condition or handler is logged and the next one runs.
   */
  dispatch(event: StateEvent): void {
    if (!this.mirrored) this.fire(event, false);
  }

  /** A change the adapter reported (see the constructor). */
  mirror(event: StateEvent): void {
    if (this.mirrored) this.fire(event, true);
  }

  private fire(event: StateEvent, ownBindingsOnly: boolean): void {
    if (!this.enabled) return;
    const matching = [...this.bindings.values()].filter(
      ({ binding, filter }) =>
        (!ownBindingsOnly || binding.nodeId === this.host.nodeId) &&
        matchesStateTrigger(filter, event.scope, event.key),
    );
    if (matching.length === 0) return;
    const { event_type, scope, key, old_value, new_value } = event;
    void this.deliver(matching, { type: 'state', event_type, scope, key, old_value, new_value });
  }

  clear(): void {
    this.bindings.clear();
  }

  private async deliver(
    matching: Array<{ binding: TriggerEntry; filter: StateTriggerFilter }>,
    payload: Json,
  ): Promise<void> {
    for (const { binding, filter } of matching) {
      try {
        if (!(await conditionPasses(this.host, filter.conditionFunctionId, payload, binding.metadata))) continue;
        await this.host.invoke(bindingCall(this.host.registry, binding, payload, binding.metadata));
      } catch (err) {
        this.host.logger.warn(
          { err, trigger: binding.id, functionId: binding.function_id },
          'state trigger handler failed',
        );
      }
    }
  }
}
