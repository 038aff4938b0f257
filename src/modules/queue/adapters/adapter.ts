import type { Json } from '../../../protocol/messages';

/**
 * The storage and delivery backend of iii-queue. Every method is async so a networked backend
 * (BullMQ on Redis: one BullMQ queue per queue name, job options `attempts`/`backoff` from the
 * queue's policy, a Worker per consumer, a `<name>::dlq` queue for dead letters) can implement
 * the same contract as the in-memory one.
 */

/** A message as producers hand it over; the adapter adds attempts and timing. */
export interface QueueJob {
  /** Unique per queue: the message receipt id of named queues, a fresh id per topic copy. */
  id: string;
  /** The function a delivery calls. */
  functionId: string;
  /** The payload the function receives. */
  data: Json;
  /** FIFO queues: messages of one group are delivered one at a time, in order. */
  group?: string;
  traceparent?: string;
  baggage?: string;
  /** Size of `data` as JSON, in bytes (what limits and `size_bytes` count). */
  sizeBytes: number;
  enqueuedAtMs: number;
}

/** What an adapter queue holds, in the module's terms (the adapter-level name alone is ambiguous). */
export type QueueSource =
  | { kind: 'named'; queue: string }
  | { kind: 'topic'; topic: string; functionId: string }
  | { kind: 'backlog'; topic: string };

/** How a queue delivers, retries and bounds its messages. */
export interface QueueSpec {
  /** The adapter-level name (`__fn_queue::<name>`, `<topic>::<function_id>`, ...). */
  name: string;
  /** What the queue is for; set by the module (an adapter that only stores messages ignores it). */
  source?: QueueSource;
  /** The name users know, for messages: `orders`, `topic user.created -> fn::id`. */
  label: string;
  /** `fifo`: one delivery at a time per message group, a retry blocks only its own group. */
  ordering: 'standard' | 'fifo';
  /** Deliveries in flight at once for this queue (>= 1). */
  concurrency: number;
  /** Attempts in total before a message is dead-lettered (>= 1). */
  maxAttempts: number;
  /** Base of the exponential backoff between attempts, in milliseconds. */
  backoffMs: number;
  /** Messages held (waiting + delayed + in flight) at most. */
  maxDepth: number;
  /** Bytes of message data kept at most, dead letters included (`QueueJob.sizeBytes`). */
  maxBytes: number;
  /** `reject` refuses a message when full (`queue_full`); `drop_oldest` makes room. */
  overflow: 'reject' | 'drop_oldest';
  /** Dead letters kept at most; the oldest is dropped to make room. */
  maxDeadLetters: number;
}

export interface DeadLetter {
  job: QueueJob;
  /** The message of the last failure. */
  error: string;
  failedAtMs: number;
  attemptsMade: number;
}

export interface QueueCounts {
  /** Ready for delivery now. */
  waiting: number;
  /** Waiting for their retry backoff (or, FIFO, behind it) to pass. */
  delayed: number;
  /** Being delivered. */
  active: number;
  deadLetters: number;
}

/**
 * One delivery attempt (`attempt` counts from 1). Resolving acknowledges the message; rejecting
 * fails the attempt (retried with backoff, or dead-lettered after the last attempt).
 */
export type Deliver = (job: QueueJob, attempt: number) => Promise<void>;

export interface QueueAdapter {
  readonly name: string;
  /** Creates a queue, or changes its policy (from the next delivery on). */
  declare(spec: QueueSpec): Promise<void>;
  /**
   * Adds a message. Resolves with the number of old messages dropped to make room (only with
   * `overflow: drop_oldest`); rejects with `queue_full` when the queue is full (messages or bytes).
   */
  enqueue(queue: string, job: QueueJob): Promise<number>;
  /** Starts delivering `queue`'s messages, at most `concurrency` at once. */
  startConsumer(queue: string, deliver: Deliver): Promise<void>;
  /** Stops starting deliveries; messages stay queued, deliveries in flight finish. */
  stopConsumer(queue: string): Promise<void>;
  /** Removes and returns every message not in flight, oldest first. */
  takeAll(queue: string): Promise<QueueJob[]>;
  counts(queue: string): Promise<QueueCounts>;
  /** Dead letters, oldest first. */
  deadLetters(queue: string, offset: number, limit: number): Promise<DeadLetter[]>;
  /** Moves every dead letter back to the queue with its attempts reset; returns how many. */
  redriveAll(queue: string): Promise<number>;
  redrive(queue: string, jobId: string): Promise<boolean>;
  discard(queue: string, jobId: string): Promise<boolean>;
  /** Stops every consumer and waits up to `graceMs` for deliveries in flight. */
  close(graceMs: number): Promise<void>;
  /**
   * Only an adapter whose queues live in another engine (`bridge`): a durable publish goes there
   * whole, and that engine fans it out to its subscribers (this engine's among them), so the
   * module does not enqueue a copy per local subscriber.
   */
  publishTopic?(topic: string, data: Json): Promise<void>;
  /**
   * Only an adapter whose queues live in another engine: the module's inspection and dead-letter
   * functions (`engine::queue::dlq_messages`, `iii::queue::redrive`, ...) are answered there,
   * under the same id and with the same payload, instead of from this engine's view of its queues.
   */
  inspect?(functionId: string, data: Json): Promise<Json>;
}
