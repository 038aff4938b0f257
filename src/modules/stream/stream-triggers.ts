import type { TriggerProvider } from '../../engine/triggers';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';
import type { StreamEvent } from './events';
import type { StreamInterest } from './interest';
import { matchesStreamTrigger, readStreamTriggerConfig, type StreamTriggerFilter } from './trigger-config';

/**
 * The `stream` trigger type: bindings fire on set/update/delete/send in this node (as the
 * original: not on writes made elsewhere), with the event message as payload. With a mirrored
 * adapter (the bridge) they fire on the changes it reports instead (`mirror`).
 */
export class StreamTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { binding: TriggerEntry; filter: StreamTriggerFilter }>();

  /** @param interest holds the stream of each binding of this node (the bridge follows it). */
  constructor(
    private readonly host: ModuleHost,
    private readonly interest: StreamInterest,
  ) {}

  registerTrigger(binding: TriggerEntry): void {
    const filter = readStreamTriggerConfig(binding.config);
    this.unregisterTrigger(binding);
    this.bindings.set(binding.id, { binding, filter });
    if (binding.nodeId === this.host.nodeId) this.interest.hold(filter.streamName);
  }

  unregisterTrigger(binding: TriggerEntry): void {
    const held = this.bindings.get(binding.id);
    if (!held) return;
    this.bindings.delete(binding.id);
    if (held.binding.nodeId === this.host.nodeId) this.interest.release(held.filter.streamName);
  }

  /** Fires every matching binding; the writer does not wait for the handlers. */
  dispatch(event: StreamEvent): void {
    this.fire(event, false);
  }

  /**
   * A change the mirrored adapter reported: fires this node's matching bindings only, since in
   * a cluster every node receives the reports of what it follows.
   */
  mirror(event: StreamEvent): void {
    this.fire(event, true);
  }

  clear(): void {
    this.bindings.clear();
  }

  private fire(event: StreamEvent, ownBindingsOnly: boolean): void {
    for (const { binding, filter } of this.bindings.values()) {
      if (ownBindingsOnly && binding.nodeId !== this.host.nodeId) continue;
      if (!matchesStreamTrigger(filter, event.streamName, event.groupId, event.id)) continue;
      if (filter.conditionFunctionId === undefined) {
        this.host.fire(binding, event);
        continue;
      }
      conditionPasses(this.host, filter.conditionFunctionId, event, binding.metadata).then(
        (pass) => pass && this.host.fire(binding, event),
        (err: unknown) =>
          this.host.logger.warn({ err, trigger: binding.id }, 'stream trigger condition failed; handler skipped'),
      );
    }
  }
}
