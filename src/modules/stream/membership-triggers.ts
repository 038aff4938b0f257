import type { TriggerProvider } from '../../engine/triggers';
import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';
import type { Subscription } from './subscriptions';
import { readMembershipTriggerConfig, type MembershipTriggerFilter } from './trigger-config';

/** The payload of `stream:join` and `stream:leave` handlers. */
export type MembershipEvent = {
  subscription_id: string;
  stream_name: string;
  group_id: string;
  id: string | null;
  context: Json;
};

/** The membership payload of one subscription of a client (raw WebSocket or Socket.IO). */
export function membershipEvent(subscription: Subscription<{ readonly context: Json }>): MembershipEvent {
  return {
    subscription_id: subscription.subscriptionId,
    stream_name: subscription.streamName,
    group_id: subscription.groupId,
    id: subscription.id,
    context: subscription.client.context,
  };
}

/**
 * One of the trigger types `stream:join` / `stream:leave`. Unlike the original, a binding's
 * `stream_name` (when given) limits it to that stream.
 */
export class MembershipTriggers implements TriggerProvider {
  private readonly bindings = new Map<string, { binding: TriggerEntry; filter: MembershipTriggerFilter }>();

  constructor(
    private readonly host: ModuleHost,
    readonly type: 'stream:join' | 'stream:leave',
  ) {}

  registerTrigger(binding: TriggerEntry): void {
    this.bindings.set(binding.id, { binding, filter: readMembershipTriggerConfig(this.type, binding.config) });
  }

  unregisterTrigger(binding: TriggerEntry): void {
    this.bindings.delete(binding.id);
  }

  /**
   * Asks the join handlers, one after the other, whether the subscription may go ahead. Any
   * `{unauthorized: true}` refuses it; so does a handler that fails (ours: the original lets the
   * client in when its authorizer is broken).
   */
  async admits(event: MembershipEvent): Promise<boolean> {
    for (const { binding, filter } of this.matching(event)) {
      try {
        if (!(await conditionPasses(this.host, filter.conditionFunctionId, event, binding.metadata))) continue;
      } catch (err) {
        this.host.logger.warn({ err, trigger: binding.id }, 'stream:join condition failed; handler skipped');
        continue;
      }
      try {
        const { result } = await this.host.invoke({
          functionId: binding.function_id,
          data: event,
          metadata: binding.metadata,
        });
        if (isUnauthorized(result)) return false;
      } catch (err) {
        this.host.logger.warn({ err, trigger: binding.id }, 'stream:join handler failed; the subscription is refused');
        return false;
      }
    }
    return true;
  }

  /** Tells the leave handlers, one after the other; their failures are logged. */
  async notify(event: MembershipEvent): Promise<void> {
    for (const { binding, filter } of this.matching(event)) {
      try {
        if (!(await conditionPasses(this.host, filter.conditionFunctionId, event, binding.metadata))) continue;
        await this.host.invoke({ functionId: binding.function_id, data: event, metadata: binding.metadata });
      } catch (err) {
        this.host.logger.warn({ err, trigger: binding.id }, `${this.type} handler failed`);
      }
    }
  }

  clear(): void {
    this.bindings.clear();
  }

  private matching(event: MembershipEvent): Array<{ binding: TriggerEntry; filter: MembershipTriggerFilter }> {
    return [...this.bindings.values()].filter(
      ({ filter }) => filter.streamName === undefined || filter.streamName === event.stream_name,
    );
  }
}

/** A join handler's refusal: `{unauthorized: true}`; anything else lets the client in. */
function isUnauthorized(result: Json | undefined): boolean {
  return typeof result === 'object' && result !== null && !Array.isArray(result) && result['unauthorized'] === true;
}
