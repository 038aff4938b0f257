/**
 * `npm run chaos`: three engine processes over one private redis-server (or, with
 * CHAOS_REDIS=sentinel, a primary, two replicas and three sentinels), iii-sdk workers and
 * callers on each, queue producers and consumers, one durable cron binding; for CHAOS_SECONDS
 * (default 60), a fault every CHAOS_FAULT_EVERY_MS (default 6000), chosen at random
 * (CHAOS_SEED) from: kill -9 of a node and its restart, SIGSTOP of Redis for 5 s, a restart
 * of Redis with its data lost (Sentinel: kill -9 of the primary, a failover), a worker that stops
 * reading for 5 s; CHAOS_FAULTS=a,b narrows the choice; CHAOS_MIN_FAULTS (default
 * 0) faults at least, the run going on past CHAOS_SECONDS until they are done (on a loaded
 * machine recoveries take longer and fewer faults fit in the time). Loopback only, bounded in
 * time; every process it starts is stopped, on errors too.
 *
 * Every call and job carries a unique id. The summary counts calls ok / failed by code / hung
 * (no answer within the deadline + 2 s), jobs lost (acknowledged, never delivered; those lost
 * with Redis's own data are shown apart) and duplicated (at least once is allowed), cron
 * seconds fired twice or missed, nodes that exited by themselves, and the time from the end of
 * each fault until calls through every node succeed again. It is printed, written between the
 * chaos markers of docs/RELIABILITY.md (unless CHAOS_WRITE_DOCS=0), and sent as one line
 * `CHAOS_SUMMARY <json>` for test/chaos/chaos.test.ts. CHAOS_DEBUG_FILE=<path> also writes the raw
 * records (each tick with its scheduled time, each lost job, each data loss) for chasing a failure;
 * CHAOS_LOG_LEVEL (default error) and CHAOS_LOG_DIR=<dir> keep each node's log there
 * (of its last start).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import { freePort, startNodeProcess, type NodeProcess } from '../../test/support/node-process';
import { startRedis } from '../../test/support/redis';
import { startSentinel } from '../../test/support/sentinel';
import { envList, envNumber } from '../lib/env';
import { table } from '../lib/markdown';
import { repoRoot } from '../lib/paths';
import { Progress } from '../lib/progress';

const NODES = 3;
/** A call's deadline, and how long past it a call counts as hung, in ms. */
const CALL_TIMEOUT_MS = 3000;
const HUNG_AFTER_MS = CALL_TIMEOUT_MS + 2000;
/** Faults that pause something last this long, in ms. */
const PAUSE_MS = 5000;
/** After the run, acknowledged jobs have this long to be delivered, in ms. */
const SETTLE_MS = 20_000;
/**
 * A job sent this long before Redis lost its data and still undelivered counts as lost by the
 * engine, not with Redis's data: jobs are delivered within milliseconds, after a node's death
 * within about 6 s (BullMQ's lock and stalled check), so such a job was stuck, not pending.
 */
const LOSS_WINDOW_MS = 10_000;
/** Recovery is "every node answers a call", probed this often, in ms, for at most RECOVERY_MAX_MS. */
const PROBE_EVERY_MS = 100;
const RECOVERY_MAX_MS = 30_000;

/** The faults of each Redis topology: one server loses its data; Sentinel loses its primary. */
const FAULTS = {
  single: ['kill-node', 'pause-redis', 'redis-data-loss', 'worker-stops-reading'],
  sentinel: ['kill-node', 'pause-redis', 'kill-primary', 'worker-stops-reading'],
} as const;
type Topology = keyof typeof FAULTS;
type Fault = (typeof FAULTS)[Topology][number];

/**
 * The Redis under the run, as the faults see it. `pause` and `loseData` resolve once the fault
 * is over; `loseData` with the window in which acknowledged writes may have gone with the data.
 */
interface ChaosRedis {
  /** How the nodes find it. */
  env: NodeJS.ProcessEnv;
  /** SIGSTOP of the server (with Sentinel, the primary: the sentinels fail over) for PAUSE_MS. */
  pause(): Promise<{ from: number; to: number } | undefined>;
  /** A restart without persistence (one server), or kill -9 of the primary (Sentinel). */
  loseData(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

async function singleRedis(): Promise<ChaosRedis> {
  const redis = await startRedis();
  return {
    env: { III_REDIS_URL: redis.url },
    async pause() {
      redis.pause();
      await sleep(PAUSE_MS);
      redis.resume();
      return undefined;
    },
    async loseData() {
      const from = Date.now();
      await redis.stop();
      await redis.restart();
      return { from, to: Date.now() };
    },
    async stop() {
      redis.resume();
      await redis.stop();
    },
  };
}

/**
 * A primary, two replicas and three sentinels. Replication is asynchronous: a write the primary
 * acknowledged just before it was killed or paused may never reach the replica promoted in its
 * place, so both faults open a data-loss window until the promotion.
 */
async function sentinelRedis(): Promise<ChaosRedis> {
  const sentinel = await startSentinel();
  return {
    env: { III_REDIS_SENTINELS: sentinel.sentinels, III_REDIS_SENTINEL_NAME: sentinel.name },
    // Paused past the sentinels' down-after time: they promote a replica meanwhile, and the old
    // primary comes back as a replica.
    async pause() {
      const from = Date.now();
      const resume = await sentinel.pausePrimary();
      await sleep(PAUSE_MS);
      resume();
      return { from, to: Date.now() };
    },
    async loseData() {
      const from = Date.now();
      const old = await sentinel.killPrimary();
      await sentinel.waitForNewPrimary(old);
      const to = Date.now();
      // Back empty; the sentinels make it a replica of the new primary.
      await sentinel.restartDataNode(old);
      return { from, to };
    },
    stop: () => sentinel.stop(),
  };
}

const CONFIG = `
workers:
  - name: iii-worker-manager
  - name: iii-queue
    config:
      queue_configs:
        chaos: { max_retries: 50, backoff_ms: 200 }
  - name: iii-cron
`;

interface FaultRecord {
  fault: Fault;
  target: string;
  startedMs: number;
  endedMs: number;
  recoveryMs: number | undefined;
}

export interface ChaosSummary {
  seconds: number;
  seed: number;
  calls: { ok: number; failed: Record<string, number>; hung: number };
  jobs: { acknowledged: number; delivered: number; lost: number; lostWithRedisData: number; duplicated: number };
  cron: { seconds: number; firedTwice: number; missed: number; missedOutsideFaults: number };
  unexpectedExits: string[];
  faults: FaultRecord[];
}

/** A small deterministic PRNG (mulberry32), so a seed replays the same faults. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The echo function served by the workers of node i only. */
const echoOf = (i: number) => `chaos::echo-${i}`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function sdk(url: string, name: string): IIIClient {
  return registerWorker(url, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
    invocationTimeoutMs: CALL_TIMEOUT_MS,
  });
}

class Chaos {
  private redis: ChaosRedis | undefined;
  private readonly nodes: Array<NodeProcess | undefined> = [];
  private readonly ports: number[] = [];
  private readonly clients: IIIClient[] = [];
  private readonly raws: WebSocket[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'iii-chaos-'));
  private readonly keyPrefix = `chaos${randomUUID().slice(0, 8)}:`;
  private readonly killing = new Set<number>();
  private running = true;

  readonly calls = { ok: 0, failed: new Map<string, number>(), hung: 0 };
  /** Acknowledged jobs: when their enqueue was sent (epoch ms). */
  readonly acked = new Map<string, number>();
  readonly delivered = new Map<string, number>();
  readonly ticks = new Map<number, number>();
  readonly tickLog: Array<{ node: number; at: number; scheduled: number }> = [];
  readonly unexpectedExits: string[] = [];
  readonly faults: FaultRecord[] = [];
  /**
   * When Redis lost its data: from just before it was stopped to when it answered again (epoch ms).
   * A job whose enqueue was sent before a loss ended may have been written to the Redis that was
   * lost (its answer can arrive after the stop began): without persistence it is not the engine's
   * to keep. A job sent after every loss ended, or long before one, has no such excuse.
   */
  private readonly dataLosses: Array<{ from: number; to: number }> = [];

  constructor(readonly topology: Topology) {}

  async start(): Promise<void> {
    writeFileSync(join(this.dir, 'config.yaml'), CONFIG);
    this.redis = await (this.topology === 'sentinel' ? sentinelRedis() : singleRedis());
    for (let i = 0; i < NODES; i++) this.ports.push(await freePort());
    for (let i = 0; i < NODES; i++) await this.startNode(i);
    for (let i = 0; i < NODES; i++) {
      const worker = sdk(this.url(i), `chaos-worker`);
      // Callers call the next node's echo: every call crosses nodes, through Redis.
      worker.registerFunction(echoOf(i), async (data: { id: string }) => ({ id: data.id, node: i }));
      worker.registerFunction(
        'chaos::job',
        async (data: { id: string }) => void this.delivered.set(data.id, (this.delivered.get(data.id) ?? 0) + 1),
      );
      // A tick is its scheduled second: a tick fired late (a dead leader's, after the grace) must
      // not be taken for the next second's, nor two fires of one tick in two seconds for two ticks.
      worker.registerFunction('chaos::tick', async (data: { scheduled_time: string }) => {
        const second = Math.floor(Date.parse(data.scheduled_time) / 1000);
        this.ticks.set(second, (this.ticks.get(second) ?? 0) + 1);
        this.tickLog.push({ node: i, at: Date.now(), scheduled: Date.parse(data.scheduled_time) });
      });
      this.clients.push(worker);
    }
    const first = sdk(this.url(0), 'chaos-setup');
    this.clients.push(first);
    await this.until(
      async () => (await Promise.all(Array.from({ length: NODES }, (_, i) => this.probe(first, i)))).every(Boolean),
      'the workers',
    );
    // One durable binding: survivors adopt it when its node dies; the cron lock fires each second once.
    await first.trigger({
      function_id: 'engine::register_trigger',
      payload: { trigger_type: 'cron', function_id: 'chaos::tick', config: { expression: '* * * * * *' } },
    });
  }

  private url(i: number): string {
    return `ws://127.0.0.1:${this.ports[i]}`;
  }

  private async startNode(i: number): Promise<void> {
    const node = await startNodeProcess({
      nodeId: `chaos-${i + 1}`,
      cwd: this.dir,
      args: ['--config', 'config.yaml'],
      env: {
        ...this.redis!.env,
        III_REDIS_KEY_PREFIX: this.keyPrefix,
        III_CLUSTER_BUS: 'redis',
        III_WS_PORT: String(this.ports[i]),
        III_DRAIN_GRACE_MS: '1000',
        LOG_LEVEL: process.env['CHAOS_LOG_LEVEL'] ?? 'error',
      },
    });
    this.nodes[i] = node;
    void node.exited.then(({ code, signal }) => {
      if (!this.killing.has(i) && this.running)
        this.unexpectedExits.push(
          `chaos-${i + 1} exited by itself (code ${code}, signal ${signal}): ${node.output().slice(-500)}`,
        );
    });
  }

  /** Closed-loop callers, one per node, with a unique id per call. */
  async callLoop(i: number): Promise<void> {
    const caller = sdk(this.url(i), `chaos-caller-${i}`);
    this.clients.push(caller);
    while (this.running) {
      const id = randomUUID();
      let settled = false;
      const hung = setTimeout(() => {
        if (!settled) this.calls.hung++;
      }, HUNG_AFTER_MS);
      try {
        await caller.trigger({ function_id: echoOf((i + 1) % NODES), payload: { id }, timeoutMs: CALL_TIMEOUT_MS });
        this.calls.ok++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'error';
        this.calls.failed.set(code, (this.calls.failed.get(code) ?? 0) + 1);
        await sleep(50);
      } finally {
        settled = true;
        clearTimeout(hung);
      }
      await sleep(5);
    }
  }

  /** A producer per node: a job with a unique id every 50 ms; acknowledged once the enqueue answers. */
  async produceLoop(i: number): Promise<void> {
    const producer = sdk(this.url(i), `chaos-producer-${i}`);
    this.clients.push(producer);
    while (this.running) {
      const id = randomUUID();
      const sentAt = Date.now();
      try {
        await producer.trigger({
          function_id: 'chaos::job',
          payload: { id },
          action: TriggerAction.Enqueue({ queue: 'chaos' }),
          timeoutMs: CALL_TIMEOUT_MS,
        });
        this.acked.set(id, sentAt);
      } catch {
        // Not acknowledged: the producer knows it failed, nothing is owed.
      }
      await sleep(50);
    }
  }

  async inject(fault: Fault, pick: () => number): Promise<void> {
    const startedMs = Date.now();
    let target = 'redis';
    switch (fault) {
      case 'kill-node': {
        const i = Math.floor(pick() * NODES);
        target = `chaos-${i + 1}`;
        this.killing.add(i);
        await this.nodes[i]?.kill('SIGKILL');
        await sleep(1000);
        await this.startNode(i);
        this.killing.delete(i);
        break;
      }
      case 'pause-redis': {
        const loss = await this.redis!.pause();
        if (loss) this.dataLosses.push(loss);
        break;
      }
      case 'redis-data-loss':
      case 'kill-primary':
        this.dataLosses.push(await this.redis!.loseData());
        break;
      case 'worker-stops-reading': {
        const i = Math.floor(pick() * NODES);
        target = `a worker on chaos-${i + 1}`;
        await this.stalledWorker(i);
        break;
      }
    }
    const endedMs = Date.now();
    const recoveryMs = await this.recovery();
    this.faults.push({ fault, target, startedMs, endedMs, recoveryMs });
  }

  /** A raw worker in node i's echo pool that stops reading its socket for PAUSE_MS, then leaves. */
  private async stalledWorker(i: number): Promise<void> {
    const ws = new WebSocket(this.url(i));
    this.raws.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'registerfunction', id: echoOf(i) }));
    await sleep(200);
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await sleep(PAUSE_MS);
    ws.terminate();
  }

  /** Time until a cross-node call from every node succeeds; undefined when not within RECOVERY_MAX_MS. */
  private async recovery(): Promise<number | undefined> {
    const started = Date.now();
    // The first NODES clients are the workers, one per node: each probes the next node's echo.
    const probes = this.clients.slice(0, NODES);
    while (Date.now() - started < RECOVERY_MAX_MS) {
      const answers = await Promise.all(probes.map((c, i) => this.probe(c, (i + 1) % NODES)));
      if (answers.every(Boolean)) return Date.now() - started;
      await sleep(PROBE_EVERY_MS);
    }
    return undefined;
  }

  private async probe(client: IIIClient, node: number): Promise<boolean> {
    try {
      await client.trigger({ function_id: echoOf(node), payload: { id: 'probe' }, timeoutMs: 1000 });
      return true;
    } catch {
      return false;
    }
  }

  private async until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`chaos: ${what} not ready within 30 s`);
      await sleep(200);
    }
  }

  stopLoad(): void {
    this.running = false;
  }

  async settle(): Promise<void> {
    const deadline = Date.now() + SETTLE_MS;
    while (
      Date.now() < deadline &&
      [...this.acked.keys()].some((id) => !this.delivered.has(id) && !this.lostWithRedis(id))
    )
      await sleep(200);
  }

  /** Raw records for chasing a failed run (CHAOS_DEBUG_FILE): ticks, lost jobs, data losses, relative to runStart. */
  debug(runStart: number): unknown {
    return {
      runStartMs: runStart,
      ticks: this.tickLog.map((t) => ({ ...t, at: t.at - runStart, scheduled: t.scheduled - runStart })),
      lost: [...this.acked].filter(([id]) => !this.delivered.has(id)).map(([id, at]) => ({ id, acked: at - runStart })),
      dataLosses: this.dataLosses.map((l) => ({ from: l.from - runStart, to: l.to - runStart })),
    };
  }

  lostWithRedis(id: string): boolean {
    const sentAt = this.acked.get(id)!;
    return this.dataLosses.some((loss) => sentAt <= loss.to && sentAt >= loss.from - LOSS_WINDOW_MS);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const ws of this.raws) ws.terminate();
    await Promise.all(this.clients.map((c) => c.shutdown().catch(() => undefined)));
    for (let i = 0; i < this.nodes.length; i++) {
      if (process.env['CHAOS_LOG_DIR'])
        writeFileSync(join(process.env['CHAOS_LOG_DIR'], `node-${i + 1}.log`), this.nodes[i]?.output() ?? '');
      this.killing.add(i);
      await this.nodes[i]?.kill('SIGKILL');
    }
    await this.redis?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function summarize(chaos: Chaos, seconds: number, seed: number, runStart: number, runEnd: number): ChaosSummary {
  let lost = 0;
  let lostWithRedisData = 0;
  for (const id of chaos.acked.keys()) {
    if (chaos.delivered.has(id)) continue;
    if (chaos.lostWithRedis(id)) lostWithRedisData++;
    else lost++;
  }
  const duplicated = [...chaos.delivered.values()].filter((n) => n > 1).length;
  // Cron: every whole second of the run but the first and last two.
  const first = Math.floor(runStart / 1000) + 2;
  const last = Math.floor(runEnd / 1000) - 2;
  const inFault = (second: number) =>
    chaos.faults.some(
      (f) =>
        second * 1000 >= f.startedMs - 1000 && second * 1000 <= f.endedMs + (f.recoveryMs ?? RECOVERY_MAX_MS) + 1000,
    );
  let firedTwice = 0;
  let missed = 0;
  let missedOutsideFaults = 0;
  for (let s = first; s <= last; s++) {
    const n = chaos.ticks.get(s) ?? 0;
    if (n > 1) firedTwice++;
    if (n === 0) {
      missed++;
      if (!inFault(s)) missedOutsideFaults++;
    }
  }
  return {
    seconds,
    seed,
    calls: { ok: chaos.calls.ok, failed: Object.fromEntries(chaos.calls.failed), hung: chaos.calls.hung },
    jobs: { acknowledged: chaos.acked.size, delivered: chaos.delivered.size, lost, lostWithRedisData, duplicated },
    cron: { seconds: Math.max(0, last - first + 1), firedTwice, missed, missedOutsideFaults },
    unexpectedExits: chaos.unexpectedExits,
    faults: chaos.faults.map((f) => ({ ...f, startedMs: f.startedMs - runStart, endedMs: f.endedMs - runStart })),
  };
}

function markdown(s: ChaosSummary, command: string): string {
  const failed =
    Object.entries(s.calls.failed)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ') || 'none';
  const faultRows = s.faults.map((f) => [
    f.fault,
    f.target,
    (f.startedMs / 1000).toFixed(1),
    ((f.endedMs - f.startedMs) / 1000).toFixed(1),
    f.recoveryMs === undefined ? 'NOT RECOVERED' : (f.recoveryMs / 1000).toFixed(2),
  ]);
  return [
    `Command: \`${command}\` (seed ${s.seed}, ${s.seconds} s; ${new Date().toISOString()}).`,
    '',
    table(
      ['measure', 'value', 'goal'],
      [
        ['calls ok', s.calls.ok, ''],
        ['calls failed, by code', failed, 'clear errors'],
        ['calls hung (no answer within deadline + 2 s)', s.calls.hung, '0'],
        ['jobs acknowledged / delivered', `${s.jobs.acknowledged} / ${s.jobs.delivered}`, ''],
        ['acknowledged jobs lost', s.jobs.lost, '0'],
        ["jobs lost with Redis's own data (restart without persistence)", s.jobs.lostWithRedisData, 'shown apart'],
        ['jobs delivered more than once', s.jobs.duplicated, 'counted'],
        ['cron seconds fired twice', s.cron.firedTwice, '0'],
        [
          `cron seconds missed (of ${s.cron.seconds}); outside fault windows`,
          `${s.cron.missed}; ${s.cron.missedOutsideFaults}`,
          '0 outside faults',
        ],
        ['nodes that exited by themselves', s.unexpectedExits.length, '0'],
        [
          'slowest recovery after a fault, s',
          s.faults.length === 0 ? '-' : Math.max(...s.faults.map((f) => (f.recoveryMs ?? Infinity) / 1000)).toFixed(2),
          '<= 5',
        ],
      ],
      ['l', 'r', 'l'],
    ),
    '',
    table(['fault', 'target', 'at s', 'lasted s', 'recovered after s'], faultRows, ['l', 'l', 'r', 'r', 'r']),
  ].join('\n');
}

/** Writes the run's section of docs/RELIABILITY.md, one per topology (`chaos` for one Redis, `chaos-sentinel`). */
function writeDocs(section: string, topology: Topology): void {
  const file = join(repoRoot, 'docs', 'RELIABILITY.md');
  const marker = topology === 'single' ? 'chaos' : `chaos-${topology}`;
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const body = `${start}\n${section}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Reliability\n';
  const title = topology === 'single' ? 'one Redis' : 'Redis Sentinel (`CHAOS_REDIS=sentinel`)';
  const next = current.includes(start)
    ? current.slice(0, current.indexOf(start)) + body + current.slice(current.indexOf(end) + end.length)
    : `${current.trimEnd()}\n\n## Chaos run over ${title}\n\nThe last run of bench/chaos/run.ts on this machine:\n\n${body}\n`;
  writeFileSync(file, next);
}

async function main(): Promise<void> {
  const seconds = envNumber('CHAOS_SECONDS', 60, 5);
  const faultEvery = envNumber('CHAOS_FAULT_EVERY_MS', 6000, 1000);
  const minFaults = envNumber('CHAOS_MIN_FAULTS', 0, 0);
  const seed = envNumber('CHAOS_SEED', Date.now() % 1_000_000);
  const pick = random(seed);
  const topology = envList('CHAOS_REDIS', ['single'])[0] as Topology;
  if (!(topology in FAULTS)) throw new Error(`CHAOS_REDIS must be one of ${Object.keys(FAULTS).join(', ')}`);
  const faults: readonly Fault[] = envList('CHAOS_FAULTS', [...FAULTS[topology]]) as Fault[];
  const unknown = faults.filter((f) => !(FAULTS[topology] as readonly Fault[]).includes(f));
  if (unknown.length > 0)
    throw new Error(
      `CHAOS_FAULTS: ${unknown.join(', ')} not among the ${topology} faults: ${FAULTS[topology].join(', ')}`,
    );
  const chaos = new Chaos(topology);
  const onSignal = () => void chaos.stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await chaos.start();
    const runStart = Date.now();
    const progress = new Progress('chaos');
    let round = 0;
    progress.update('load', { endsAtMs: runStart + seconds * 1000 });
    const load = [
      ...Array.from({ length: NODES }, (_, i) => chaos.callLoop(i)),
      ...Array.from({ length: NODES }, (_, i) => chaos.produceLoop(i)),
    ];
    const more = () => Date.now() - runStart < seconds * 1000 || round < minFaults;
    while (more()) {
      await sleep(faultEvery);
      if (!more()) break;
      progress.update('fault', { index: ++round, endsAtMs: runStart + seconds * 1000 });
      await chaos.inject(faults[Math.floor(pick() * faults.length)]!, pick);
    }
    const runEnd = Date.now();
    chaos.stopLoad();
    await Promise.all(load);
    progress.update('settling');
    await chaos.settle();
    progress.stop();
    const summary = summarize(chaos, seconds, seed, runStart, runEnd);
    const knobs = [
      ...(topology === 'single' ? [] : [`CHAOS_REDIS=${topology}`]),
      ...(process.env['CHAOS_FAULTS'] ? [`CHAOS_FAULTS=${faults.join(',')}`] : []),
      `CHAOS_SECONDS=${seconds}`,
      `CHAOS_FAULT_EVERY_MS=${faultEvery}`,
      `CHAOS_SEED=${seed}`,
    ];
    const text = markdown(summary, `${knobs.join(' ')} npm run chaos`);
    process.stdout.write(`${text}\n`);
    if (process.env['CHAOS_WRITE_DOCS'] !== '0') writeDocs(text, topology);
    process.stdout.write(`CHAOS_SUMMARY ${JSON.stringify(summary)}\n`);
    const debugFile = process.env['CHAOS_DEBUG_FILE'];
    if (debugFile) writeFileSync(debugFile, JSON.stringify(chaos.debug(runStart), null, 1));
  } finally {
    await chaos.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
