import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';

/**
 * Label values come from callers (function ids, even unknown ones) and workers (error codes), so
 * the number of series is capped: past these, new ids count as `(other)` and new codes as `other`.
 */
export const MAX_FUNCTION_SERIES = 10_000;
export const MAX_OUTCOME_SERIES = 10_000;
/** The `function` label of calls to ids nobody serves (`function_not_found`): any caller can make up ids. */
export const UNKNOWN_FUNCTION = '(unknown)';
const OTHER_FUNCTION = '(other)';
/** Series (direction × peer node) of iii_cross_node_calls_total; later peers count as `(other)`. */
export const MAX_CROSS_NODE_SERIES = 512;
const OTHER_OUTCOME = 'other';

/** The engine's Prometheus metrics, one registry per engine (tests run several in a process). */
export class EngineMetrics {
  readonly registry = new PromRegistry();

  readonly invocations = new Counter({
    name: 'iii_invocations_total',
    help: 'Invocations settled by this node, by function and outcome (ok or the error code).',
    labelNames: ['function', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly invocationSeconds = new Histogram({
    name: 'iii_invocation_duration_seconds',
    help: 'Time from routing a call to its settlement, by function.',
    labelNames: ['function'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly connectedWorkers = new Gauge({
    name: 'iii_connected_workers',
    help: 'Worker WebSocket connections on this node.',
    registers: [this.registry],
  });

  readonly invalidFrames = new Counter({
    name: 'iii_invalid_frames_total',
    help: 'Frames from workers that could not be decoded.',
    registers: [this.registry],
  });

  readonly slowConsumers = new Counter({
    name: 'iii_slow_consumer_disconnects_total',
    help: 'Sockets closed because their send queue passed its limit.',
    registers: [this.registry],
  });

  /**
   * Requests, calls and connections refused by a configured limit, by the limit's key
   * (`max_payload_bytes`, `max_pending_calls_per_node`, `max_connections_per_address`,
   * `iii-http.max_header_count`, `iii-http.max_connections_per_address`, `iii-stream.max_connections_per_address`, `engine.console.max_connections_per_address`).
   */
  readonly limitRefusals = new Counter({
    name: 'iii_limit_refusals_total',
    help: 'Requests, calls and connections refused by a configured limit, by limit key.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  /**
   * Calls a stopping node failed because it could not finish or hand them over: `grace_expired`
   * (still pending when `drain_grace_ms` ended, answered `engine_shutting_down`), `unclaimed`
   * (sent on a socket the drain closed, never claimed from another node), `no_target` (for a
   * worker that left, with its function served nowhere else).
   */
  readonly drainFailedCalls = new Counter({
    name: 'iii_drain_failed_calls_total',
    help: 'Calls a stopping node failed instead of finishing or handing them over, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly telemetryDropped = new Counter({
    name: 'iii_telemetry_dropped_total',
    help: 'SDK telemetry frames (or records in them) dropped as malformed, by signal (OTLP, LOGS, MTRC).',
    labelNames: ['signal'] as const,
    registers: [this.registry],
  });

  /**
   * Calls that crossed to another node, by direction (`out`: this node routed a call to a worker
   * on `peer`; `in`: `peer` routed one here) and the other node's id (bounded by the cluster's size).
   */
  private readonly crossNodeCalls = new Counter({
    name: 'iii_cross_node_calls_total',
    help: 'Calls routed between this node and another, by direction (out: sent to peer, in: served for peer) and peer node.',
    labelNames: ['direction', 'peer'] as const,
    registers: [this.registry],
  });

  /**
   * Errors on the cluster's own Redis connections (registry, membership, bus-pub, bus-sub):
   * every failed connect or reconnect attempt during an outage counts, as does a refused password.
   */
  readonly redisErrors = new Counter({
    name: 'iii_redis_errors_total',
    help: "Errors on this node's cluster Redis connections (failed connects and reconnects, refused auth or TLS), by connection.",
    labelNames: ['connection'] as const,
    registers: [this.registry],
  });

  constructor(pendingCalls: () => number, labels: Record<string, string>) {
    this.registry.setDefaultLabels(labels);
    new Gauge({
      name: 'iii_pending_calls',
      help: 'Calls sent to workers on this node and not yet settled.',
      registers: [this.registry],
      collect() {
        this.set(pendingCalls());
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The node's state, read when scraped: `iii_node_draining` (1 from the start of stop() on),
   * and in cluster mode `iii_redis_up` (1 while Redis answers and the heartbeat gets through,
   * as /readyz checks) and `iii_cluster_nodes` (the nodes this node sees alive, itself included).
   */
  watchNode(read: () => { draining: boolean; redisUp?: boolean; nodes?: number }): void {
    new Gauge({
      name: 'iii_node_draining',
      help: 'Whether this node is draining (1: stopping, it takes no new work) or not (0).',
      registers: [this.registry],
      collect() {
        this.set(read().draining ? 1 : 0);
      },
    });
    if (read().redisUp === undefined) return;
    new Gauge({
      name: 'iii_redis_up',
      help: "Whether this node's cluster Redis answers and its heartbeat gets through (1) or not (0).",
      registers: [this.registry],
      collect() {
        this.set(read().redisUp ? 1 : 0);
      },
    });
    new Gauge({
      name: 'iii_cluster_nodes',
      help: 'Cluster nodes this node sees alive, itself included.',
      registers: [this.registry],
      collect() {
        this.set(read().nodes ?? 1);
      },
    });
  }

  /**
   * The direct bus's figures, read when scraped (nothing on the call path): open links, and the
   * calls and results sent over links and over Redis (no link could take them).
   */
  watchLinks(read: () => { open: number; link: number; redis: number } | undefined): void {
    new Gauge({
      name: 'iii_cluster_links_open',
      help: 'Direct bus links this node sends over (cluster.bus: direct).',
      registers: [this.registry],
      collect() {
        this.set(read()?.open ?? 0);
      },
    });
    new Counter({
      name: 'iii_cluster_bus_messages_total',
      help: 'Calls and results this node sent to other nodes on the direct bus, by path: link, or redis when no link could take them.',
      labelNames: ['via'] as const,
      registers: [this.registry],
      collect() {
        const counts = read();
        this.reset();
        this.inc({ via: 'link' }, counts?.link ?? 0);
        this.inc({ via: 'redis' }, counts?.redis ?? 0);
      },
    });
  }

  /** Children of iii_cross_node_calls_total by direction and peer: counted on every cross-node call. */
  private readonly crossNodeSeries = new Map<string, Counter.Internal>();

  /**
   * Counts a call that crossed to (`out`) or from (`in`) node `peer`. Past MAX_CROSS_NODE_SERIES
   * (the node ids of restarted pods pile up over a long life) new peers share the series `(other)`.
   */
  countCrossNode(direction: 'in' | 'out', peer: string): void {
    const key = `${direction}\0${peer}`;
    let series = this.crossNodeSeries.get(key);
    if (!series) {
      const label = this.crossNodeSeries.size >= MAX_CROSS_NODE_SERIES ? OTHER_FUNCTION : peer;
      series = this.crossNodeCalls.labels(direction, label);
      if (label === peer) this.crossNodeSeries.set(key, series);
    }
    series.inc();
  }

  /** Labelled children of the hot-path metrics, per function id (label hashing costs per call). */
  private readonly perFunction = new Map<string, FunctionSeries>();
  /** The series of every id past MAX_FUNCTION_SERIES. */
  private other: FunctionSeries | undefined;
  /** Error outcomes seen, as `function + NUL + code` (bounded by MAX_OUTCOME_SERIES). */
  private readonly outcomes = new Set<string>();

  observe(functionId: string, outcome: string, startedAtMs: number): void {
    const series = this.seriesOf(outcome === 'function_not_found' ? UNKNOWN_FUNCTION : functionId);
    if (outcome === 'ok') series.ok.inc();
    else this.invocations.inc({ function: series.label, outcome: this.outcomeLabel(series.label, outcome) });
    series.seconds.observe((performance.now() - startedAtMs) / 1000);
  }

  private seriesOf(functionId: string): FunctionSeries {
    const known = this.perFunction.get(functionId);
    if (known) return known;
    if (this.perFunction.size >= MAX_FUNCTION_SERIES) return (this.other ??= this.newSeries(OTHER_FUNCTION));
    const series = this.newSeries(functionId);
    this.perFunction.set(functionId, series);
    return series;
  }

  private newSeries(label: string): FunctionSeries {
    return { label, ok: this.invocations.labels(label, 'ok'), seconds: this.invocationSeconds.labels(label) };
  }

  private outcomeLabel(fn: string, outcome: string): string {
    const key = `${fn}\0${outcome}`;
    if (this.outcomes.has(key)) return outcome;
    if (this.outcomes.size >= MAX_OUTCOME_SERIES) return OTHER_OUTCOME;
    this.outcomes.add(key);
    return outcome;
  }
}

interface FunctionSeries {
  label: string;
  ok: Counter.Internal;
  seconds: Histogram.Internal<'function'>;
}
