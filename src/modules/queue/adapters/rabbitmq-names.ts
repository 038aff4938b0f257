import type { Options } from 'amqplib';

/**
 * RabbitMQ names and queue arguments of one adapter queue. The original lays a queue out as
 * `iii.<name>` exchange + `.queue`, `::retry` + `.queue`, `::dlq` + `.queue`; we publish
 * through the default exchange (every message goes to exactly one known queue: the module
 * does the topic fan-out), so only the queues exist, named after the original's with the
 * cluster's key prefix in front (`iii:` by default) so several clusters can share a broker.
 */
export interface RabbitNames {
  /** Ready messages: `<prefix><name>.queue`. */
  main: string;
  /** Dead letters: `<prefix><name>::dlq.queue`. */
  dlq: string;
  /** The retry queue of a backoff delay (ms): `<prefix><name>::retry.<delayMs>ms.queue`. */
  retry(delayMs: number): string;
}

export function rabbitNames(prefix: string, queue: string): RabbitNames {
  const base = `${prefix}${queue}`;
  return {
    main: `${base}.queue`,
    dlq: `${base}::dlq.queue`,
    retry: (delayMs) => `${base}::retry.${delayMs}ms.queue`,
  };
}

/**
 * Highest message priority (`priority_field`). Every main queue is a priority queue from its
 * first declaration, because RabbitMQ cannot add `x-max-priority` to an existing queue; a
 * message without a priority gets 0 and all-zero queues deliver in FIFO order. RabbitMQ
 * advises at most 10 levels (each costs the queue a sub-queue).
 */
export const MAX_PRIORITY = 9;

/**
 * The main queue. `single_active_consumer` for FIFO queues: the broker hands messages to one
 * consumer of the whole cluster at a time (the next takes over when it goes), which with
 * prefetch 1 keeps every message group in order.
 */
export function mainQueueOptions(fifo: boolean): Options.AssertQueue {
  const args: Record<string, unknown> = { 'x-max-priority': MAX_PRIORITY };
  if (fifo) args['x-single-active-consumer'] = true;
  return { durable: true, arguments: args };
}

/**
 * How long an unused retry queue lives after its last declaration, beyond its delay, in ms.
 * The adapter declares a retry queue before every message it parks there, so it is deleted
 * only when its last message has gone back to the main queue long ago: a policy change
 * (backoff_ms, max_attempts) leaves no queues behind for good.
 */
export const RETRY_QUEUE_IDLE_MS = 10 * 60 * 1000;

/**
 * A retry queue: every message waits `delayMs` (the queue's TTL, so they expire in order and
 * none blocks a shorter one behind it), then the broker dead-letters it back to the tail of
 * the main queue through the default exchange.
 */
export function retryQueueOptions(main: string, delayMs: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': main,
      'x-expires': delayMs + RETRY_QUEUE_IDLE_MS,
    },
  };
}

export const DLQ_OPTIONS: Options.AssertQueue = { durable: true };

/** Message headers the adapter keeps (AMQP headers survive dead-lettering and requeues). */
export const Header = {
  /** Failed attempts so far: 0 on a new or redriven message. */
  attempts: 'x-iii-attempts',
  /** Dead letters: the message of the last failure. */
  error: 'x-iii-error',
  /** Dead letters: when they failed for the last time, in ms since the epoch. */
  failedAt: 'x-iii-failed-at',
} as const;
