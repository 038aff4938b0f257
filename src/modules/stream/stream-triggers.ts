import type { TriggerProvider } from '../../engine/triggers';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../module';
import type { StreamEvent } from './events';
import { matchesStreamTrigger, readStreamTriggerConfig, type StreamTriggerFilter } from './trigger-config';

/**
 * The `stream` trigger type: bindings fire on set/update/delete/send in this node (as the
 * original: not on writes made elsewhere), with the event message as payload.
 */
export class StreamTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { binding: TriggerEntry; filter: StreamTriggerFilter }>();

  constructor(private readonly host: ModuleHost) {}

  registerTrigger(binding: TriggerEntry): void {
    this.bindings.set(binding.id, { binding, filter: readStreamTriggerConfig(binding.config) });
  }

  unregisterTrigger(binding: TriggerEntry): void {
    this.bindings.delete(binding.id);
  }

  /** Fires every matching binding; the writer does not wait for the handlers. */
  dispatch(event: StreamEvent): void {
    for (const { binding, filter } of this.bindings.values()) {
      if (!matchesStreamTrigger(filter, event.streamName, event.groupId, event.id)) continue;
      if (filter.conditionFunctionId === undefined) {
        this.host.fire(binding, event);
        continue;
      }
      conditionPasses(this.host, filter.conditionFunctionId, event, binding.metadata).then(
        (pass) => pass && this.host.fire(binding, event),
        (err: unknown) => this.host.logger.warn({ err, trigger: binding.id }, 'stream trigger condition failed; handler skipped'),
      );
    }
  }

  clear(): void {
    this.bindings.clear();
  }
}
