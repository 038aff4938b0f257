import type { JobsOptions, WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { scrubErrorsOf } from '../../../cluster/redis-errors';
import { redisOptions, type RedisEndpoint } from '../../../cluster/redis-options';
import type { QueueJob, QueueSpec } from './adapter';

/**
 * How long a Worker's lock on a job lives without renewal, in ms. BullMQ renews it every half
 * of this while the handler runs; a node that dies stops renewing, so its jobs become stalled
 * at most this long after the crash. Short, so a killed node's jobs come back within seconds;
 * not shorter, because an event loop blocked for half of it (2 s) loses a live lock and the job
 * runs twice (at-least-once either way).
 */
export const LOCK_DURATION_MS = 4000;

/**
 * How often the stalled-job check runs, in ms (one node runs it per interval: BullMQ guards it
 * with a key). A job whose lock expired is back in `wait`, at the head, within about
 * LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS = 6 s of its node's death.
 */
export const STALLED_INTERVAL_MS = 1000;

/**
 * A job may stall (its node died or froze while holding it) this many times; one more and it is
 * dead-lettered with "job stalled more than allowable limit". A stall is not a failed attempt:
 * the handler never answered. The limit only stops a job that kills every node taking it.
 */
export const MAX_STALLED_COUNT = 3;

/** Pause of a Worker's fetch loop after a Redis error before it tries again, in ms. */
export const RUN_RETRY_DELAY_MS = 1000;

/** Wait between reconnect attempts of a Worker's connections: grows per attempt up to the cap, in ms. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** What a BullMQ job carries: the message as the module handed it over. */
export interface BullJobData {
  job: QueueJob;
}

/** BullMQ refuses `:` in queue names and job ids, and ids that look like integers. */
export function bullQueueName(queue: string): string {
  return encodeURIComponent(queue);
}

export function bullJobId(messageId: string): string {
  return `m${messageId.replace(/%/g, '%25').replace(/:/g, '%3A')}`;
}

/**
 * Job options from the queue's policy (`ordering`: the one its lanes were laid out for). Standard queues let BullMQ retry: `attempts` counts every
 * attempt, and its exponential backoff waits `backoffMs * 2^(attemptsMade - 1)`, as ours.
 * FIFO queues retry inside the delivery (see BullmqQueueAdapter), so BullMQ sees one attempt.
 * Failed jobs stay: the failed set is the dead-letter queue.
 */
export function jobOptions(ordering: QueueSpec['ordering'], spec: QueueSpec, job: QueueJob): JobsOptions {
  const retries: JobsOptions =
    ordering === 'fifo'
      ? { attempts: 1 }
      : { attempts: spec.maxAttempts, backoff: { type: 'exponential', delay: spec.backoffMs } };
  return { jobId: bullJobId(job.id), removeOnComplete: true, removeOnFail: false, ...retries };
}

/**
 * A never-connected template for Workers: BullMQ duplicates it into the Worker's own connections
 * (a blocking one for fetching, one for commands) and owns those; a duplicate copies its options,
 * password and TLS included. Unlike the producer's fail-fast connection, they wait out an outage
 * (`maxRetriesPerRequest: null`, as BullMQ requires for blocking commands) and reconnect
 * forever, so consumers resume by themselves.
 */
export function workerConnectionTemplate(endpoint: RedisEndpoint, connectionName: string): Redis {
  const template = new Redis({
    ...redisOptions(endpoint),
    connectionName,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    disconnectTimeout: 100,
  });
  // A refused password must not reach the consumer's log line with the credentials.
  return scrubErrorsOf(template);
}

export function workerOptions(connection: Redis, prefix: string, concurrency: number): WorkerOptions {
  return {
    connection,
    prefix,
    concurrency,
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    maxStalledCount: MAX_STALLED_COUNT,
    runRetryDelay: RUN_RETRY_DELAY_MS,
  };
}

/**
 * FIFO queues are split into lanes (one BullMQ queue each, one delivery at a time cluster-wide):
 * a message group always maps to the same lane, so a retry blocks only the groups of its lane.
 * The lane count is the queue's concurrency at its first declaration, at most this many (each
 * lane costs every node a Worker with two Redis connections).
 */
export const MAX_FIFO_LANES = 8;

/** The lane of a message group: FNV-1a (32 bit) of its text, modulo the lane count. */
export function fifoLane(group: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < group.length; i++) {
    hash ^= group.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % lanes;
}
