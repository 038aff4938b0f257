import type { Json } from '../../protocol/messages';

/** How one queue delivers and retries. */
export interface DeliveryPolicy {
  ordering: 'standard' | 'fifo';
  /** Deliveries in flight at once (>= 1). */
  concurrency: number;
  /** Attempts in total before the dead-letter queue (>= 1). */
  maxAttempts: number;
  /** Base of the exponential backoff, in milliseconds. */
  backoffMs: number;
}

export interface NamedQueueSettings {
  name: string;
  policy: DeliveryPolicy;
  /** FIFO queues: the field of `data` naming a message's group. */
  messageGroupField?: string;
  /** The block as configured with defaults filled in (what `topic_stats` shows). */
  config: Record<string, Json>;
}

/** Bounds on what the module holds (ours; adapter config keys in parentheses). */
export interface QueueLimits {
  /** Messages one queue holds at most (`max_depth`); more are refused with `queue_full`. */
  maxDepth: number;
  /** Messages kept for a topic without subscribers (`max_topic_backlog`); the oldest go first. */
  maxTopicBacklog: number;
  /**
   * Durable topics this node knows at most (`max_topics`): a publish or subscription that would
   * add one more is refused with `limit_exceeded`; known topics keep working.
   */
  maxTopics: number;
  /** Message data one queue keeps, dead letters included (`max_queue_bytes`); more is `queue_full`. */
  maxQueueBytes: number;
  /** Dead letters kept per queue (`max_dead_letters`); the oldest go first. */
  maxDeadLetters: number;
  /** Largest `data` accepted, as JSON bytes (`max_message_bytes`, at most the engine's limit). */
  maxMessageBytes: number;
}

export interface QueueSettings {
  adapterName: string;
  named: Map<string, NamedQueueSettings>;
  /** Defaults of `durable:subscriber` queues (adapter config `max_attempts`, `backoff_ms`, ...). */
  subscriberDefaults: DeliveryPolicy;
  limits: QueueLimits;
}

export const DEFAULT_MAX_DEPTH = 100_000;
export const DEFAULT_MAX_TOPIC_BACKLOG = 10_000;
export const DEFAULT_MAX_TOPICS = 10_000;
export const DEFAULT_MAX_DEAD_LETTERS = 10_000;
export const DEFAULT_MAX_QUEUE_BYTES = 256 * 1024 * 1024;

/** FunctionQueueConfig defaults of the original (§6.2). */
const NAMED_DEFAULTS = {
  max_retries: 3,
  concurrency: 10,
  type: 'standard',
  backoff_ms: 1000,
  poll_interval_ms: 100,
} as const;

/**
 * Reads the module's block (defaults filled in by the config schema, which has checked the
 * named-queue keys). The adapter's `config` is free-form in the schema, so its numbers are
 * checked here; a bad value throws with the key and what is expected.
 */
export function readSettings(config: Record<string, unknown>, engineMaxMessageBytes: number): QueueSettings {
  const adapter = asRecord(config['adapter']);
  const adapterName = typeof adapter['name'] === 'string' ? adapter['name'] : 'builtin';
  const options = asRecord(adapter['config']);
  const storeMethod = options['store_method'] ?? 'in_memory';
  if (storeMethod !== 'in_memory' && storeMethod !== 'file_based') {
    throw new Error(
      `iii-queue: adapter.config.store_method must be "in_memory" or "file_based", got ${JSON.stringify(storeMethod)}`,
    );
  }
  const filePath = options['file_path'];
  if (filePath !== undefined && (typeof filePath !== 'string' || filePath === '')) {
    throw new Error(
      `iii-queue: adapter.config.file_path must be a directory path (a non-empty string), got ${JSON.stringify(filePath)}`,
    );
  }
  const int = (key: string, fallback: number, min: number): number => {
    const value = options[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new Error(`iii-queue: adapter.config.${key} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const mode = options['mode'] ?? 'standard';
  if (mode !== 'standard' && mode !== 'concurrent' && mode !== 'fifo') {
    throw new Error(
      `iii-queue: adapter.config.mode must be "standard", "concurrent" or "fifo", got ${JSON.stringify(mode)}`,
    );
  }
  const subscriberDefaults: DeliveryPolicy = {
    ordering: mode === 'fifo' ? 'fifo' : 'standard',
    concurrency: int('concurrency', 10, 1),
    maxAttempts: int('max_attempts', 3, 1),
    backoffMs: int('backoff_ms', 1000, 0),
  };
  int('poll_interval_ms', 100, 1);
  const limits: QueueLimits = {
    maxDepth: int('max_depth', DEFAULT_MAX_DEPTH, 1),
    maxTopicBacklog: int('max_topic_backlog', DEFAULT_MAX_TOPIC_BACKLOG, 0),
    maxTopics: int('max_topics', DEFAULT_MAX_TOPICS, 1),
    maxQueueBytes: int('max_queue_bytes', DEFAULT_MAX_QUEUE_BYTES, 1),
    maxDeadLetters: int('max_dead_letters', DEFAULT_MAX_DEAD_LETTERS, 0),
    maxMessageBytes: Math.min(int('max_message_bytes', engineMaxMessageBytes, 1), engineMaxMessageBytes),
  };

  const named = new Map<string, NamedQueueSettings>();
  const blocks = { default: {}, ...asRecord(config['queue_configs']) };
  for (const [name, raw] of Object.entries(blocks)) named.set(name, namedQueue(name, asRecord(raw)));
  return { adapterName, named, subscriberDefaults, limits };
}

function namedQueue(name: string, block: Record<string, unknown>): NamedQueueSettings {
  const merged = { ...NAMED_DEFAULTS, ...block } as Record<string, Json>;
  const settings: NamedQueueSettings = {
    name,
    policy: {
      ordering: merged['type'] === 'fifo' ? 'fifo' : 'standard',
      concurrency: merged['concurrency'] as number,
      // The original stores max_retries as the job's max_attempts: it counts every attempt.
      maxAttempts: Math.max(1, merged['max_retries'] as number),
      backoffMs: merged['backoff_ms'] as number,
    },
    config: merged,
  };
  if (typeof merged['message_group_field'] === 'string') settings.messageGroupField = merged['message_group_field'];
  return settings;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
