import type { Redis } from 'ioredis';
import type { EngineConfig } from '../../config/types';
import { connectRedis, isClusterMode, redisTarget } from '../../cluster/redis-target';
import { slotPrefix } from '../../cluster/redis-options';
import type { Logger } from '../../observability/logger';
import { MAX_BY_FUNCTION, quantileMs, type Buckets, type EngineSnapshot, type FunctionCounts } from './engine-snapshot';

/** How often each node publishes its per-function figures, in ms (a timer: nothing on the call path). */
export const PUBLISH_INTERVAL_MS = 2000;
/** A node's summary outlives its last publication by this much; a dead node's drops out after it. */
export const SUMMARY_TTL_MS = 3 * PUBLISH_INTERVAL_MS;
/** Largest summary a node writes or a reader accepts, in bytes. */
export const MAX_SUMMARY_BYTES = 1024 * 1024;
/** Most node summaries merged by one read (the reader takes the first this many ids). */
export const MAX_NODES = 256;

/** One function's figures on one node, as published: cumulative counts since that node started. */
interface PublishedFunction {
  total: number;
  error: number;
  /** Calls per second over this node's last publication interval. */
  rate: number;
  /** Cumulative histogram counts, one per bound of the summary's `bounds`, then +Inf. */
  buckets: number[];
}

interface Summary {
  node_id: string;
  at_ms: number;
  /** Finite upper bounds of the latency histogram, in seconds. */
  bounds: number[];
  functions: Record<string, PublishedFunction>;
}

/** The answer of `engine::functions::stats`. */
export interface FunctionStats {
  scope: 'cluster' | 'node';
  nodes: string[];
  functions: Array<Row & { function_id: string; nodes: Array<Row & { node_id: string }> }>;
}

/** One node's row, or the cluster's total, in `engine::functions::stats`. */
interface Row {
  total: number;
  error: number;
  error_rate: number | null;
  rate_per_second: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

/**
 * Cluster-wide per-function figures. Every PUBLISH_INTERVAL_MS each node reads what EngineMetrics
 * already counts (calls, errors, the latency histogram) and, in cluster mode, writes a compact
 * summary to `<prefix>figures:node:<id>` with a TTL, listing itself in `<prefix>figures:nodes`.
 * `engine::functions::stats` merges the live summaries: counts and rates summed, histogram
 * buckets summed, p50/p99 computed from the merged buckets (percentiles cannot be averaged).
 * Without Redis the node's own figures come back under the same shape.
 */
export class ClusterFigures {
  private redis: Redis | undefined;
  private keyPrefix = '';
  private timer: NodeJS.Timeout | undefined;
  /** Totals at the previous publication, for the per-interval rate. */
  private previous = { atMs: Date.now(), totals: new Map<string, number>() };
  private lastRates = new Map<string, number>();

  constructor(
    private readonly snapshot: EngineSnapshot,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {}

  async start(cluster: EngineConfig['cluster']): Promise<void> {
    if (isClusterMode(cluster)) {
      const target = redisTarget('iii-observability', null, cluster);
      // A summary and the node set are written in one MULTI: one slot on a Redis Cluster.
      this.keyPrefix = slotPrefix(target, target.keyPrefix, 'figures');
      // Figures are for people: a Redis down at start must not stop the engine (the cluster
      // mode's own connections report it); this node then answers with its own figures only.
      this.redis = await connectRedis(target, `iii:${this.nodeId}:figures`, this.logger).catch((err: unknown) => {
        this.logger.warn({ err }, "cluster figures: Redis unreachable at start; only this node's figures are served");
        return undefined;
      });
    }
    this.timer = setInterval(() => {
      this.publish().catch((err: unknown) => this.logger.warn({ err }, 'cluster figures publication failed'));
    }, PUBLISH_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const redis = this.redis;
    this.redis = undefined;
    if (redis && redis.status !== 'end') {
      // Leave at once rather than after the TTL: a stopped node's figures are no longer live.
      await redis
        .multi()
        .del(this.key())
        .srem(this.nodesKey(), this.nodeId)
        .exec()
        .catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    }
  }

  /** Reads this node's figures, advances the rate baseline, and writes the summary when clustered. */
  async publish(): Promise<void> {
    const summary = await this.local(true);
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return;
    const text = JSON.stringify(summary);
    if (Buffer.byteLength(text) > MAX_SUMMARY_BYTES) {
      this.logger.warn({ bytes: Buffer.byteLength(text) }, 'cluster figures summary too large; not published');
      return;
    }
    await redis.multi().set(this.key(), text, 'PX', SUMMARY_TTL_MS).sadd(this.nodesKey(), this.nodeId).exec();
  }

  /** `engine::functions::stats`: per function the total and the rows of each node. */
  async stats(scope: 'cluster' | 'node'): Promise<FunctionStats> {
    const summaries = [await this.local(false)];
    if (scope === 'cluster' && this.redis) summaries.push(...(await this.others()));
    const byFunction = new Map<string, Array<{ nodeId: string; bounds: number[]; f: PublishedFunction }>>();
    for (const s of summaries)
      for (const [id, f] of Object.entries(s.functions))
        byFunction.set(id, [...(byFunction.get(id) ?? []), { nodeId: s.node_id, bounds: s.bounds, f }]);
    const functions = [...byFunction].map(([id, parts]) => {
      const merged: Buckets = new Map();
      const nodes = parts.map(({ nodeId, bounds, f }) => {
        const buckets = toBuckets(bounds, f.buckets);
        for (const [le, n] of buckets) merged.set(le, (merged.get(le) ?? 0) + n);
        return { node_id: nodeId, ...row(f.total, f.error, f.rate, buckets) };
      });
      const total = parts.reduce((n, p) => n + p.f.total, 0);
      const error = parts.reduce((n, p) => n + p.f.error, 0);
      const rate = parts.reduce((n, p) => n + p.f.rate, 0);
      return { function_id: id, ...row(total, error, rate, merged), nodes };
    });
    functions.sort((a, b) => b.total - a.total || (a.function_id < b.function_id ? -1 : 1));
    return { scope, nodes: summaries.map((s) => s.node_id), functions: functions.slice(0, MAX_BY_FUNCTION) };
  }

  /** This node's summary, now; `advance` makes it the baseline of the next interval's rates. */
  private async local(advance: boolean): Promise<Summary> {
    const counts = await this.snapshot.readFunctions();
    const now = Date.now();
    const top = [...counts].sort(([, a], [, b]) => b.total - a.total).slice(0, MAX_BY_FUNCTION);
    const bounds = histogramBounds(top.map(([, f]) => f));
    const elapsedS = Math.max(0.001, (now - this.previous.atMs) / 1000);
    const functions: Record<string, PublishedFunction> = {};
    const totals = new Map<string, number>();
    const rates = new Map<string, number>();
    for (const [id, f] of top) {
      totals.set(id, f.total);
      const rate = round((f.total - (this.previous.totals.get(id) ?? 0)) / elapsedS);
      rates.set(id, rate);
      // Between publications a read reports the last full interval's rate, not a partial one.
      functions[id] = {
        total: f.total,
        error: f.error,
        rate: advance ? rate : (this.lastRates.get(id) ?? rate),
        buckets: [...bounds, Infinity].map((le) => f.buckets.get(le) ?? 0),
      };
    }
    if (advance) {
      this.previous = { atMs: now, totals };
      this.lastRates = rates;
    }
    return { node_id: this.nodeId, at_ms: now, bounds, functions };
  }

  /** The live summaries of the other nodes; ids whose key has expired are dropped from the set. */
  private async others(): Promise<Summary[]> {
    const redis = this.redis!;
    const ids = (await redis.smembers(this.nodesKey())).filter((id) => id !== this.nodeId).slice(0, MAX_NODES);
    if (ids.length === 0) return [];
    const texts = await redis.mget(ids.map((id) => this.key(id)));
    const gone = ids.filter((_, i) => texts[i] === null);
    if (gone.length > 0) await redis.srem(this.nodesKey(), ...gone).catch(() => undefined);
    const out: Summary[] = [];
    for (const text of texts) {
      if (text === null || text.length > MAX_SUMMARY_BYTES) continue;
      try {
        out.push(JSON.parse(text) as Summary);
      } catch {
        // A malformed summary (another build?) is left out rather than failing the answer.
      }
    }
    return out;
  }

  private key(nodeId = this.nodeId): string {
    return `${this.keyPrefix}figures:node:${nodeId}`;
  }

  private nodesKey(): string {
    return `${this.keyPrefix}figures:nodes`;
  }
}

/** The finite bucket bounds in use (the same for every function of one EngineMetrics). */
function histogramBounds(functions: FunctionCounts[]): number[] {
  const bounds = new Set<number>();
  for (const f of functions) for (const le of f.buckets.keys()) if (le !== Infinity) bounds.add(le);
  return [...bounds].sort((a, b) => a - b);
}

function toBuckets(bounds: number[], counts: number[]): Buckets {
  const out: Buckets = new Map();
  [...bounds, Infinity].forEach((le, i) => out.set(le, counts[i] ?? 0));
  return out;
}

function row(total: number, error: number, rate: number, buckets: Buckets): Row {
  return {
    total,
    error,
    error_rate: total > 0 ? round(error / total) : null,
    rate_per_second: round(rate),
    p50_ms: quantileMs(buckets, 0.5),
    p99_ms: quantileMs(buckets, 0.99),
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
