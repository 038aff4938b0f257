import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import Redlock, { ResourceLockedError, type Lock } from 'redlock';
import type { Logger } from '../../../observability/logger';
import type { CronLock, LastTick } from './lock';
import { CLAIM_TICK, END_RUN, EXTEND_RUN } from './redis-lock-scripts';

/**
 * How long after a tick's scheduled time a node without the job's lease waits before claiming
 * the tick itself, in ms: the most a dead leader delays a tick.
 */
export const NON_LEADER_GRACE_MS = 500;

/**
 * How long a job's tick key outlives its last claim, in ms. A node whose clock or timer lags by
 * less than this cannot fire a tick again; the key of a removed job goes away after it.
 */
export const TICK_KEY_RETENTION_MS = 24 * 60 * 60 * 1000;

export interface RedisCronLockOptions {
  /** This node's id: recorded as the claimant of the ticks it wins and the owner of its runs. */
  nodeId: string;
  /** Every key starts with it (the cluster's key prefix, e.g. `iii:`). */
  keyPrefix: string;
  /** Lifetime of the lease and of the run marker, in ms; holders extend them every third of it. */
  lockTtlMs: number;
  /** Wait of a node without the lease after the scheduled time, in ms (NON_LEADER_GRACE_MS). */
  graceMs?: number;
  logger: Logger;
}

/**
 * The `redis` cron adapter: each tick of a job fires on exactly one node of the cluster.
 *
 * - Correctness: a tick runs only on the node whose CLAIM_TICK succeeds; the script accepts a
 *   scheduled time only if it is later than every one claimed before, so however many nodes try,
 *   and whatever their clocks say, one wins.
 * - Promptness: the node holding the job's Redlock lease (`cron:lease:{job}`) claims at the tick;
 *   the others wait the grace first, so a dead leader costs at most the grace, never a tick.
 *   A node that has seen the leader claim in time stops contending for the lease (one command
 *   a tick instead of three) until it has to fire a tick itself; the first to do so after the
 *   leader's death or stop takes the lease once it is free. The lease is only an efficiency
 *   device: losing it, or two nodes believing they hold it, never fires a tick twice.
 * - No overlap: the winner marks the job as running (`cron:run:{job}`) and extends the mark every
 *   third of `lockTtlMs` until release; no node claims a tick while the mark is someone else's.
 *   A runner that dies mid-run leaves its mark until it expires: the job pauses for at most
 *   `lockTtlMs`, then resumes on another node.
 * - Redis unreachable (or silent past the connection's command timeout): tryAcquire rejects and
 *   the scheduler skips the tick with a warning. A claim whose reply was lost is a skipped tick
 *   too: a tick is never fired twice, at worst missed.
 * - Redis restarted without its data (no persistence, or a failover to a replica that had not
 *   caught up): the tick keys, which are what makes a claim unique, may be gone. So a node never
 *   claims a tick scheduled before its connection last became ready: that tick may have been
 *   claimed and fired on the Redis it was talking to before. Without this, a node still in its
 *   grace fired a tick the leader had fired a moment before the restart (the chaos run's double
 *   tick). The cost is a tick skipped across each reconnection to another server. (The
 *   comparison is of this node's clocks; the leader's clock running ahead by d opens a window
 *   of d.) A reconnection to the same server (its `run_id` unchanged: a dropped connection, a
 *   CLIENT KILL, which Sentinel sends whenever it reconfigures a node) lost nothing and skips
 *   nothing: in the Sentinel chaos run such kills came seconds after a failover and cost ticks.
 *
 * The `{job}` hash tag keeps a job's keys in one slot, as a multi-key script needs on Redis Cluster.
 */
export class RedisCronLock implements CronLock {
  private readonly redlock: Redlock;
  private readonly graceMs: number;
  /** Leases this node holds, by job id. */
  private readonly leases = new Map<string, Lock>();
  /** Timers extending the run marks of this node's runs in progress, by job id. */
  private readonly heartbeats = new Map<string, NodeJS.Timeout>();
  /**
   * Jobs whose latest tick another node claimed before this node's grace ran out, with when
   * (epoch ms): they have a live leader, so this node stops contending for their lease (two Redis
   * commands a tick) until it has to fire a tick itself.
   */
  private readonly ledElsewhere = new Map<string, number>();
  /** When expired leases were last dropped from `leases` (epoch ms). */
  private lastSweepMs = Date.now();
  /**
   * When the connection last became ready again (epoch ms): ticks scheduled before it are not
   * claimed. 0 until a reconnection: the lock is made on a connection already ready, and the
   * Redis it was first given holds every claim made so far.
   */
  private readyAtMs = 0;
  /** The `run_id` of the server the connection last reached; undefined until known. */
  private serverRunId: string | undefined;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisCronLockOptions,
  ) {
    this.graceMs = options.graceMs ?? NON_LEADER_GRACE_MS;
    redis.on('ready', () => void this.reconnected());
    void this.runId().then((id) => (this.serverRunId ??= id));
    // No retries: a tick never waits for the lease; a node without it falls back on the grace.
    this.redlock = new Redlock([redis], { retryCount: 0 });
    // Redlock reports every failed attempt; a lease held by another node is the normal case.
    this.redlock.on('error', (err: Error) => {
      if (!(err instanceof ResourceLockedError)) options.logger.debug({ err }, 'cron lease attempt failed');
    });
  }

  async tryAcquire(jobId: string, scheduledTimeMs: number): Promise<boolean> {
    if (this.closed) return false;
    // Without a connection every command fails at once: say so plainly rather than as a lost race.
    if (this.redis.status !== 'ready')
      throw new Error(`Redis is unreachable (connection ${this.redis.status}); the cron tick cannot be claimed`);
    if (this.claimedBeforeReconnect(jobId, scheduledTimeMs)) return false;
    this.sweep();
    const leading = !this.ledElsewhere.has(jobId) && (await this.lead(jobId));
    if (!leading) {
      const waitMs = scheduledTimeMs + this.graceMs - Date.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      if (this.closed) return false;
    }
    const claimed = await this.script(
      CLAIM_TICK,
      [this.key('tick', jobId), this.key('run', jobId)],
      [scheduledTimeMs, this.options.nodeId, TICK_KEY_RETENTION_MS, this.options.lockTtlMs],
    );
    if (!leading) {
      if (claimed === 1) this.ledElsewhere.delete(jobId);
      else this.ledElsewhere.set(jobId, Date.now());
    }
    if (claimed === -1)
      this.options.logger.debug(
        { job: jobId, scheduledTimeMs },
        'cron tick skipped: a run of the job is in progress on another node',
      );
    if (claimed !== 1) return false;
    // The claim may have gone out on a connection that has since been replaced (ioredis resends
    // unanswered commands after a reconnect): the new Redis may have lost the earlier claim.
    if (this.claimedBeforeReconnect(jobId, scheduledTimeMs)) {
      await this.script(END_RUN, [this.key('run', jobId)], [this.options.nodeId]);
      return false;
    }
    this.startHeartbeat(jobId);
    return true;
  }

  /**
   * The connection is ready again: ticks scheduled before now are not claimed, unless it reached
   * the very server it had before (see "Redis restarted" above). Until that server answers, the
   * cautious rule holds.
   */
  private async reconnected(): Promise<void> {
    const previous = this.readyAtMs;
    this.readyAtMs = Date.now();
    const id = await this.runId();
    if (id !== undefined && id === this.serverRunId) this.readyAtMs = previous;
    this.serverRunId = id;
  }

  /** The server's `run_id` (new at every start; another server, another id); undefined if it does not answer. */
  private async runId(): Promise<string | undefined> {
    try {
      return /run_id:(\w+)/.exec(await this.redis.info('server'))?.[1];
    } catch {
      return undefined;
    }
  }

  /** True (and logged) when the tick is older than the connection: see "Redis restarted" above. */
  private claimedBeforeReconnect(jobId: string, scheduledTimeMs: number): boolean {
    if (scheduledTimeMs >= this.readyAtMs) return false;
    this.options.logger.warn(
      { job: jobId, scheduledTimeMs, reconnectedAtMs: this.readyAtMs },
      'cron tick skipped: Redis reconnected after its scheduled time, and may have lost the claim of it',
    );
    return true;
  }

  async release(jobId: string, _scheduledTimeMs: number): Promise<void> {
    const heartbeat = this.heartbeats.get(jobId);
    if (heartbeat === undefined) return;
    clearInterval(heartbeat);
    this.heartbeats.delete(jobId);
    await this.script(END_RUN, [this.key('run', jobId)], [this.options.nodeId]);
  }

  /** The tick key CLAIM_TICK writes ({at, by}): the same answer from every node. */
  async lastTick(jobId: string): Promise<LastTick | undefined> {
    const [at, by] = await this.redis.hmget(this.key('tick', jobId), 'at', 'by');
    if (at === null || by === null) return undefined;
    return { nodeId: by, atMs: Number(at) };
  }

  /** Ends this node's runs and gives up its leases (another node may take them at once); then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = [...this.heartbeats.keys()];
    const leases = [...this.leases.values()];
    this.leases.clear();
    await Promise.all([
      ...running.map((jobId) => this.release(jobId, 0).catch(() => undefined)),
      // A lease that cannot be released expires after lockTtlMs.
      ...leases.map((lease) => lease.release().catch(() => undefined)),
    ]);
    // Disconnecting an ended connection would leave ioredis's 2 s disconnect timer running.
    if (this.redis.status !== 'end') await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** True when this node holds the job's lease: extends it, or takes it if nobody has it. */
  private async lead(jobId: string): Promise<boolean> {
    const held = this.leases.get(jobId);
    this.leases.delete(jobId);
    if (held) {
      try {
        this.leases.set(jobId, await held.extend(this.options.lockTtlMs));
        return true;
      } catch {
        // Expired, or taken over after expiring: try to take it afresh below.
      }
    }
    try {
      this.leases.set(jobId, await this.redlock.acquire([this.key('lease', jobId)], this.options.lockTtlMs));
      return true;
    } catch {
      return false;
    }
  }

  /** Forgets expired leases and stale leaders (e.g. of jobs since removed), at most once per lockTtlMs. */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweepMs < this.options.lockTtlMs) return;
    this.lastSweepMs = now;
    for (const [jobId, lease] of this.leases) if (lease.expiration < now) this.leases.delete(jobId);
    for (const [jobId, seenMs] of this.ledElsewhere)
      if (now - seenMs > TICK_KEY_RETENTION_MS) this.ledElsewhere.delete(jobId);
  }

  /** Extends the run mark (and the lease, if held) while the run lasts, every third of lockTtlMs. */
  private startHeartbeat(jobId: string): void {
    const everyMs = Math.max(1, Math.floor(this.options.lockTtlMs / 3));
    const timer = setInterval(() => void this.beat(jobId), everyMs);
    timer.unref();
    this.heartbeats.set(jobId, timer);
  }

  private async beat(jobId: string): Promise<void> {
    try {
      const kept = await this.script(
        EXTEND_RUN,
        [this.key('run', jobId)],
        [this.options.nodeId, this.options.lockTtlMs],
      );
      if (kept !== 1)
        this.options.logger.warn(
          { job: jobId },
          'cron run mark lost (expired during a Redis outage?); another node may start an overlapping run',
        );
      const lease = this.leases.get(jobId);
      if (lease && this.heartbeats.has(jobId)) this.leases.set(jobId, await lease.extend(this.options.lockTtlMs));
    } catch (err) {
      this.options.logger.warn({ err, job: jobId }, 'cron run mark or lease could not be extended');
    }
  }

  private key(kind: 'lease' | 'tick' | 'run', jobId: string): string {
    return `${this.options.keyPrefix}cron:${kind}:{${jobId}}`;
  }

  /** EVALSHA, falling back to EVAL the first time a server has not seen the script. */
  private async script(source: string, keys: string[], args: Array<string | number>): Promise<unknown> {
    const sha = createHash('sha1').update(source).digest('hex');
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(source, keys.length, ...keys, ...args);
    }
  }
}
