import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger';
import { openRedis, redisConnection, redisProblem } from './redis-connection';
import { slotPrefix, type RedisEndpoint } from './redis-options';

export interface MembershipOptions {
  /** How often this node renews its liveness key and looks at the others', in ms. */
  heartbeatMs: number;
  /** Lifetime of a liveness key: a node silent this long is gone, in ms. */
  ttlMs: number;
}

export const DEFAULT_MEMBERSHIP: MembershipOptions = { heartbeatMs: 250, ttlMs: 1000 };

export interface NodeInfo {
  nodeId: string;
  incarnation: string;
  startedAtMs: number;
  /** Where other nodes reach this node's worker port (`ws://host:port`), for relayed channels and direct links. */
  url?: string;
  /**
   * With `cluster.bus: direct`: what another node presents to open a link to this one. Random per
   * start; as safe as the Redis it is stored in, which every node can read and no worker can.
   */
  linkKey?: string;
  /**
   * `draining` from the start of this node's drain until it leaves (the next heartbeat writes
   * it); absent while it serves normally.
   */
  state?: 'draining';
  /** The bus frames this node reads (bus-codec.ts BUS_WIRE); absent: 1, a node of an earlier version. */
  wire?: number;
}

/**
 * Which nodes are alive. Each node renews `alive:<node>` (PX ttl) every heartbeat and lists
 * itself in the `nodes` hash; every node checks the others' keys on the same beat. Emits
 * `up` (NodeInfo), `down` (nodeId, reason) and, after each settled check, `judged` (the set of
 * other node ids found alive). A node restarted under the same id (new
 * incarnation) is reported down, then up.
 *
 * During a Redis outage nothing is declared down (nobody can beat); after reconnecting, a node
 * waits one ttl before judging the others, so they have time to beat again.
 */
export class Membership extends EventEmitter {
  private readonly redis: Redis;
  private readonly known = new Map<string, NodeInfo>();
  private timer: NodeJS.Timeout | undefined;
  /** When this node's connection last came up; no one is judged within a ttl of it. */
  private connectedAtMs = 0;
  private healthy = false;

  /** The membership's keys: one slot on a Redis Cluster (a heartbeat writes two in one MULTI). */
  private readonly prefix: string;

  constructor(
    redis: RedisEndpoint,
    keyPrefix: string,
    readonly self: NodeInfo,
    private readonly logger: Logger,
    private readonly options: MembershipOptions = DEFAULT_MEMBERSHIP,
  ) {
    super();
    this.prefix = slotPrefix(redis, keyPrefix, 'members');
    this.redis = redisConnection(redis, `iii:${self.nodeId}:membership`, logger);
    this.redis.on('ready', () => {
      this.connectedAtMs = Date.now();
    });
  }

  /** True while the last heartbeat reached Redis. */
  get reachable(): boolean {
    return this.healthy;
  }

  /** Why the heartbeat connection is down, in words, if known. */
  get redisProblem(): string | undefined {
    return redisProblem(this.redis);
  }

  /** The other node `nodeId`, while it is believed alive. */
  node(nodeId: string): NodeInfo | undefined {
    return this.known.get(nodeId);
  }

  /** The other nodes currently believed alive. */
  nodes(): NodeInfo[] {
    return [...this.known.values()];
  }

  /** Every node listed in Redis right now (alive or not yet judged), this one excluded. */
  async listed(): Promise<NodeInfo[]> {
    const listed = await this.redis.hgetall(this.nodesKey);
    return Object.entries(listed)
      .filter(([id]) => id !== this.self.nodeId)
      .map(([, text]) => parseInfo(text))
      .filter((info): info is NodeInfo => info !== undefined);
  }

  async start(): Promise<void> {
    await openRedis(this.redis, 'cluster membership');
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  /** Leaves at once (drain): the others need not wait for the ttl. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.redis.multi().del(this.aliveKey(this.self.nodeId)).hdel(this.nodesKey, this.self.nodeId).exec();
    } catch (err) {
      this.logger.debug({ err }, 'could not remove this node from the membership');
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private get nodesKey(): string {
    return `${this.prefix}nodes`;
  }

  private aliveKey(nodeId: string): string {
    return `${this.prefix}alive:${nodeId}`;
  }

  private async beat(): Promise<void> {
    let listed: Record<string, string>;
    try {
      const replies = await this.redis
        .multi()
        .set(this.aliveKey(this.self.nodeId), this.self.incarnation, 'PX', this.options.ttlMs)
        .hset(this.nodesKey, this.self.nodeId, JSON.stringify(this.self))
        .hgetall(this.nodesKey)
        .exec();
      listed = (replies?.[2]?.[1] ?? {}) as Record<string, string>;
      this.healthy = true;
    } catch (err) {
      if (this.healthy) this.logger.warn({ err }, 'membership heartbeat failed: Redis unreachable');
      this.healthy = false;
      return;
    }
    await this.judge(listed);
  }

  private async judge(listed: Record<string, string>): Promise<void> {
    const others = Object.keys(listed).filter((id) => id !== this.self.nodeId);
    let alive: (string | null)[];
    try {
      alive = others.length ? await this.redis.mget(others.map((id) => this.aliveKey(id))) : [];
    } catch {
      return;
    }
    const settled = Date.now() - this.connectedAtMs >= this.options.ttlMs;
    const seen = new Set<string>();
    others.forEach((nodeId, i) => {
      const incarnation = alive[i];
      if (incarnation == null) {
        if (settled) void this.redis.hdel(this.nodesKey, nodeId).catch(() => undefined);
        return;
      }
      const info = parseInfo(listed[nodeId]);
      if (!info || info.incarnation !== incarnation) return;
      seen.add(nodeId);
      const previous = this.known.get(nodeId);
      if (previous?.incarnation === incarnation) return;
      if (previous) this.lose(nodeId, 'restarted');
      this.known.set(nodeId, info);
      this.emit('up', info);
    });
    if (!settled) return;
    for (const nodeId of [...this.known.keys()]) if (!seen.has(nodeId)) this.lose(nodeId, 'heartbeat expired');
    this.emit('judged', seen);
  }

  /** Forgets a node now, e.g. when it announced its drain; false when it was not known. */
  lose(nodeId: string, reason: string): boolean {
    if (!this.known.delete(nodeId)) return false;
    this.logger.info({ lostNode: nodeId, reason }, 'node left the cluster');
    this.emit('down', nodeId, reason);
    return true;
  }
}

function parseInfo(text: string): NodeInfo | undefined {
  try {
    const value = JSON.parse(text) as NodeInfo;
    return typeof value.incarnation === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
