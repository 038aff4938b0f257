import type { JobsOptions, WorkerOptions } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { scrubErrorsOf } from '../../../cluster/redis-errors';
import { clusterOptions, redisOptions, type RedisEndpoint } from '../../../cluster/redis-options';
import type { RedisTarget } from '../../../cluster/redis-target';
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
 *
 * Cluster mode: the template is a `Redis.Cluster` of its own. The Worker's connection threw
 * there for three reasons, each met here (all three seen against a real cluster):
 * - This template was built from `redisOptions(endpoint)`, which refuses a Cluster endpoint (a
 *   Cluster has no one host: "a Redis Cluster takes clusterOptions, not redisOptions"), so
 *   `new BullmqQueueAdapter` threw before any Worker existed.
 * - Given a Cluster, BullMQ checks its node options (`options.redisOptions`, not the Cluster's
 *   own) and `new Worker` throws "maxRetriesPerRequest must be null" when they set a positive
 *   one: `null` goes in `redisOptions`, where both ioredis and BullMQ read it.
 * - With the one-Redis prefix, BullMQ's scripts and MULTIs span keys in several slots and
 *   Redis answers CROSSSLOT: the prefix carries a hash tag (bullPrefix).
 * BullMQ duplicates a Cluster with `duplicate(undefined, { redisOptions })`, its connection
 * names in the second argument: scrubErrorsOf passes every argument on (it used to drop that
 * one). Like the one-Redis template, the Cluster keeps its offline queue (commands of a
 * reconnect wait instead of failing), and redials for ever (`clusterRetryStrategy`; a node
 * connection never reconnects by itself, ioredis refreshes the slots instead); clusterOptions
 * gives it the redirection and retry delays of every Cluster connection.
 */
export function workerConnectionTemplate(endpoint: RedisEndpoint, connectionName: string): Redis {
  const retryStrategy = (attempt: number) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_MAX_MS);
  if (endpoint.cluster !== undefined) {
    const base = clusterOptions(endpoint);
    const template = new Cluster(
      endpoint.cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        ...base,
        redisOptions: { ...base.redisOptions, connectionName, maxRetriesPerRequest: null, disconnectTimeout: 100 },
        lazyConnect: true,
        enableOfflineQueue: true,
        enableReadyCheck: true,
        clusterRetryStrategy: retryStrategy,
      },
    ) as unknown as Redis;
    return scrubErrorsOf(template);
  }
  const template = new Redis({
    ...redisOptions(endpoint),
    connectionName,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy,
    disconnectTimeout: 100,
  });
  // A refused password must not reach the consumer's log line with the credentials.
  return scrubErrorsOf(template);
}

/**
 * The BullMQ prefix of an iii queue (every lane of a FIFO queue shares it). A BullMQ queue's
 * keys are `<prefix>:<queue>:<suffix>` (`wait`, `active`, `meta`, `marker`, one per job...),
 * and ours, the FIFO lane count, `<prefix>:<queue>:lanes`; `<queue>` is bullQueueName of the
 * iii queue, or of a lane (`<queue>%23<n>`, `#` encoded).
 *
 * - One Redis and Sentinel: `<keyPrefix>bull`, as ever: keys `iii:bull:orders:wait`,
 *   `iii:bull:orders:lanes`, `iii:bull:orders%230:wait`. A rolling upgrade keeps finding its
 *   queues, so this layout must not change.
 * - Redis Cluster: `<keyPrefix>bull:{<queue>}`: keys `iii:bull:{orders}:orders:wait`,
 *   `iii:bull:{orders}:orders:lanes`, `iii:bull:{orders}:orders%230:wait`. BullMQ's Lua
 *   scripts and MULTIs touch many keys of a queue at once, which Redis Cluster refuses across
 *   slots (CROSSSLOT); the hash tag `{<queue>}` puts every key of an iii queue, its lanes and
 *   the lane count in one slot, while different queues spread over the shards (a tag over the
 *   whole prefix, BullMQ's simplest advice, would put every queue on one shard). The tag holds
 *   no brace: bullQueueName encodes `{` and `}`.
 *
 * Throws when the cluster's key prefix would break the tag (an empty `{}` first, which Redis
 * ignores, so each key would hash whole).
 */
export function bullPrefix(target: RedisTarget, queue: string): string {
  if (target.cluster === undefined) return `${target.keyPrefix}bull`;
  const prefix = `${target.keyPrefix}bull:{${bullQueueName(queue)}}`;
  const open = prefix.indexOf('{');
  if (prefix[open + 1] === '}')
    throw new Error(
      `Redis Cluster: the key prefix ${JSON.stringify(target.keyPrefix)} (cluster.key_prefix / III_REDIS_KEY_PREFIX) holds an empty hash tag "{}", so a queue's keys would spread over several slots and BullMQ's scripts fail with CROSSSLOT; remove the braces`,
    );
  return prefix;
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
