import type { Json } from '../../protocol/messages';
import type { TriggerEntry } from '../../registry/types';
import { Input } from '../input';

/** A `subscribe` binding, checked. */
export interface Subscription {
  readonly trigger: TriggerEntry;
  readonly topic: string;
  readonly conditionFunctionId?: string;
}

/**
 * Reads a `subscribe` binding's config `{topic, condition_function_id?}`. An empty topic refuses
 * the binding (the original accepts it with a warning and never delivers anything to it).
 */
export function readSubscription(trigger: TriggerEntry): Subscription {
  const config = trigger.config;
  const input = new Input(
    'subscribe trigger config',
    typeof config === 'object' && config !== null && !Array.isArray(config) ? config : {},
  );
  const topic = input.optString('topic');
  if (topic === undefined || topic === '') throw new Error('Subscribe trigger needs a non-empty `topic` in its config');
  const conditionFunctionId = input.optString('condition_function_id');
  return conditionFunctionId === undefined ? { trigger, topic } : { trigger, topic, conditionFunctionId };
}

/** `trigger_request_format` of the `subscribe` type. */
export const SUBSCRIBE_CONFIG_SCHEMA: Json = {
  type: 'object',
  properties: {
    topic: { type: 'string', minLength: 1 },
    condition_function_id: { type: 'string' },
    fan_out: { type: 'boolean', description: 'fire on every binding of a pool, not once per binding group' },
  },
  required: ['topic'],
};
