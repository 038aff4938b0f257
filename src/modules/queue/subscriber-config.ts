import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { DeliveryPolicy } from './settings';

export const SUBSCRIBER_TYPE = 'durable:subscriber';

export interface SubscriberConfig {
  topic: string;
  conditionFunctionId?: string;
  policy: DeliveryPolicy;
}

/**
 * snake_case spellings users try in `queue_config`. The original silently ignores them; we
 * refuse them, naming the key it reads (note `maxRetries` counts retries after the first attempt,
 * unlike a named queue's `max_retries`).
 */
const CAMEL_CASE_OF: Record<string, string> = {
  max_retries: 'maxRetries',
  backoff_ms: 'backoffDelayMs',
  backoff_delay_ms: 'backoffDelayMs',
  max_priority: 'maxPriority',
  visibility_timeout: 'visibilityTimeout',
  delay_seconds: 'delaySeconds',
  backoff_type: 'backoffType',
};

/**
 * A `durable:subscriber` binding's config: `{topic (alias queue), condition_function_id?,
 * queue_config?: {type, maxRetries, concurrency, backoffDelayMs}}`; missing settings come from
 * the adapter's defaults. Throws (refusing the binding) with what is wrong.
 */
export function readSubscriberConfig(config: Json, defaults: DeliveryPolicy): SubscriberConfig {
  const input = new Input(SUBSCRIBER_TYPE, config ?? {});
  const topic = input.optString('topic') ?? input.optString('queue') ?? '';
  if (topic === '') throw input.fail('`topic` is required (a non-empty string; `queue` is accepted as an alias)');
  const parsed: SubscriberConfig = { topic, policy: { ...defaults } };
  const condition = input.optString('condition_function_id');
  if (condition !== undefined) parsed.conditionFunctionId = condition;
  const raw = input.raw('queue_config');
  if (raw === undefined) return parsed;
  const queue = new Input(`${SUBSCRIBER_TYPE} queue_config`, raw);
  for (const [snake, camel] of Object.entries(CAMEL_CASE_OF)) {
    if (queue.has(snake)) throw queue.fail(`\`${snake}\` is not read; write \`${camel}\``);
  }
  const int = (key: string, min: number): number | undefined => {
    const value = queue.optNumber(key);
    if (value !== undefined && (!Number.isInteger(value) || value < min))
      throw queue.fail(`field \`${key}\` must be an integer >= ${min}`);
    return value;
  };
  const type = queue.optString('type');
  if (type !== undefined) parsed.policy.ordering = type === 'fifo' ? 'fifo' : 'standard';
  const maxRetries = int('maxRetries', 0);
  if (maxRetries !== undefined) parsed.policy.maxAttempts = maxRetries + 1;
  const concurrency = int('concurrency', 1);
  if (concurrency !== undefined) parsed.policy.concurrency = concurrency;
  const backoff = int('backoffDelayMs', 0);
  if (backoff !== undefined) parsed.policy.backoffMs = backoff;
  return parsed;
}

/** A policy in the subscriber's own (camelCase) terms, for `topic_stats`. */
export function subscriberConfigView(policy: DeliveryPolicy): Json {
  return {
    type: policy.ordering,
    maxRetries: policy.maxAttempts - 1,
    concurrency: policy.concurrency,
    backoffDelayMs: policy.backoffMs,
  };
}
