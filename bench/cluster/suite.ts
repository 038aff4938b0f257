import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../../test/support/redis';
import { BenchChild } from '../lib/child';
import { fmtInt, fmtMs, fmtRatio, table } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { envList } from '../lib/env';
import { median } from '../lib/stats';
import { inflightSettings, windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import type { WorkerReady } from '../invoke/protocol';
import {
  describeRun,
  measureRun,
  startBenchCluster,
  totalCpuUs,
  type Caller,
  type Measured,
  type Priced,
  type RunningCluster,
} from './harness';

/**
 * Targets (issue 12, Redis bus): at K=1 the cross-node p50 is at most the same-node p50 plus
 * twice the bare Redis ping-pong (the floor: what two PUBLISHes cost); at K=64 the cross-node
 * throughput is at least 0.8x the same call between two Moleculer brokers over the same Redis;
 * at most 2.1 Redis commands per cross-node call, with 2 nodes and with 3 nodes + more functions.
 */
const FLOOR_MULTIPLE = 2;
const MOLECULER_TARGET = 0.8;
const COMMANDS_PER_CALL_TARGET = 2.1;
/** Targets of the direct bus: K=1 p50 at most 1.5x same-node's, K=64 throughput at least Moleculer's. */
const DIRECT_P50_TARGET = 1.5;
const DIRECT_MOLECULER_TARGET = 1.0;

/**
 * same-node / cross-node: two nodes, the caller on A, the echo worker on A or B. cross-node-large:
 * the same call with a third node and FILLER_FUNCTIONS more functions registered, to show that
 * a call's Redis cost does not grow with nodes or functions. moleculer: the peer. redis-floor:
 * two bare ioredis processes, one PUBLISH there and one back per call (bench/cluster/redis-pingpong.ts).
 * direct: cross-node with `cluster.bus: direct` (node-to-node links). BENCH_PLACEMENTS picks a subset.
 */
const PLACEMENTS = ['same-node', 'cross-node', 'direct', 'cross-node-large', 'moleculer', 'redis-floor'] as const;
type Placement = (typeof PLACEMENTS)[number];

function placements(): Placement[] {
  const wanted = envList('BENCH_PLACEMENTS', [...PLACEMENTS]);
  const unknown = wanted.filter((p) => !(PLACEMENTS as readonly string[]).includes(p));
  if (unknown.length)
    throw new Error(`BENCH_PLACEMENTS: unknown ${unknown.join(', ')}; available: ${PLACEMENTS.join(', ')}`);
  return PLACEMENTS.filter((p) => wanted.includes(p));
}
const FILLER_FUNCTIONS = 1000;

/** The peer lives in its own package (moleculer 0.15 wants ioredis 5; we use 6). */
const MOLECULER_DIR = path.resolve(__dirname, '../../../bench/peers/moleculer');

function ensureMoleculer(log: (line: string) => void): void {
  if (fs.existsSync(path.join(MOLECULER_DIR, 'node_modules', 'moleculer'))) return;
  log('  installing the Moleculer peer (bench/peers/moleculer, once)');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefix', MOLECULER_DIR], { stdio: 'ignore' });
}

interface Settings {
  warmupMs: number;
  measureMs: number;
  rounds: number;
  inflight: number[];
}

function settings(): Settings {
  return { ...windowSettings(1), inflight: inflightSettings() };
}

interface PlacedRun extends Measured {
  placement: Placement;
}

/**
 * Two cluster nodes A and B over one Redis (three for cross-node-large); the caller is on A, the
 * echo worker on A or B. For `moleculer` and `redis-floor`, their two processes over the same Redis.
 */
async function session(
  placement: Placement,
  redisUrl: string,
  s: Settings,
  log: (line: string) => void,
): Promise<PlacedRun[]> {
  const redis = new Redis(redisUrl);
  let running: RunningCluster | undefined;
  try {
    if (placement === 'moleculer' || placement === 'redis-floor') running = await startPeer(placement, redisUrl);
    else {
      running = await startBenchCluster({
        redisUrl,
        label: placement,
        nodes: placement === 'cross-node-large' ? 3 : 2,
        bus: placement === 'direct' ? 'direct' : 'redis',
        workerNode: placement === 'same-node' ? 0 : 1,
        fillerFunctions: placement === 'cross-node-large' ? FILLER_FUNCTIONS : 0,
      });
    }
    const results: PlacedRun[] = [];
    for (const inflight of s.inflight) {
      const measured = await measureRun(running.caller, redis, running.processes, inflight, s);
      log(describeRun(placement, measured));
      results.push({ ...measured, placement });
    }
    return results;
  } finally {
    await running?.stop();
    redis.disconnect();
  }
}

/** The peer's two processes: the echo side, then the caller. */
async function startPeer(placement: 'moleculer' | 'redis-floor', redisUrl: string): Promise<RunningCluster> {
  const namespace = `bench${Date.now()}`;
  const script =
    placement === 'moleculer'
      ? path.join(MOLECULER_DIR, 'broker.js')
      : path.join(distBench, 'cluster', 'redis-pingpong.js');
  const children: Caller[] = [];
  const processes: Priced[] = [];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
  };
  const fork = (role: string) => {
    const child: Caller = BenchChild.fork(script, { name: `${placement} ${role}`, args: [role, redisUrl, namespace] });
    children.push(child);
    processes.push({ name: role, child });
    return child;
  };
  try {
    await fork('echo').next<WorkerReady>('ready', 30_000);
    const caller = fork('caller');
    await caller.next<WorkerReady>('ready', 30_000);
    return { caller, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = settings();
  const chosen = placements();
  log(`cluster: ${s.rounds} rounds x [${chosen.join(', ')}], K = ${s.inflight.join(', ')}, private redis-server`);
  let redis: TestRedis | undefined;
  const runs: PlacedRun[] = [];
  try {
    ensureMoleculer(log);
    redis = await startRedis();
    for (let round = 0; round < s.rounds; round++) {
      for (const placement of chosen) runs.push(...(await session(placement, redis.url, s, log)));
    }
  } finally {
    await redis?.stop();
  }
  const checks: SuiteResult['checks'] = [];
  const rows = s.inflight.map((inflight) => {
    const pick = (p: Placement) => runs.filter((r) => r.placement === p && r.inflight === inflight);
    const rate = (p: Placement) => median(pick(p).map((r) => r.callsPerSec));
    const p50 = (p: Placement) => median(pick(p).map((r) => r.p50Ms));
    const commands = (p: Placement) => median(pick(p).map((r) => r.redisCommandsPerCall));
    const publishes = (p: Placement) => median(pick(p).map((r) => r.redisPublishesPerCall));
    const peerRatio = rate('cross-node') / rate('moleculer');
    if (inflight === 1) {
      const bound = p50('same-node') + FLOOR_MULTIPLE * p50('redis-floor');
      checks.push({
        name: `K=1 cross-node p50 ≤ same-node p50 + ${FLOOR_MULTIPLE}× Redis ping-pong (${fmtMs(bound)} ms)`,
        pass: p50('cross-node') <= bound,
      });
    } else {
      checks.push({
        name: `K=${inflight} cross-node ≥ ${MOLECULER_TARGET}× Moleculer`,
        pass: peerRatio >= MOLECULER_TARGET,
      });
    }
    if (inflight === 1) {
      checks.push({
        name: `K=1 direct p50 ≤ ${DIRECT_P50_TARGET}× same-node p50`,
        pass: p50('direct') <= DIRECT_P50_TARGET * p50('same-node'),
      });
    } else {
      checks.push({
        name: `K=${inflight} direct ≥ ${DIRECT_MOLECULER_TARGET}× Moleculer`,
        pass: rate('direct') / rate('moleculer') >= DIRECT_MOLECULER_TARGET,
      });
    }
    checks.push({
      name: `K=${inflight} ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands (PUBLISH) per cross-node call (2 and 3 nodes)`,
      pass:
        publishes('cross-node') <= COMMANDS_PER_CALL_TARGET &&
        publishes('cross-node-large') <= COMMANDS_PER_CALL_TARGET,
    });
    return [
      inflight,
      fmtInt(rate('same-node')),
      fmtInt(rate('cross-node')),
      fmtRatio(rate('cross-node') / rate('same-node')),
      fmtMs(p50('same-node')),
      fmtMs(p50('cross-node')),
      `${publishes('cross-node').toFixed(2)} / ${commands('cross-node').toFixed(2)}`,
      `${publishes('cross-node-large').toFixed(2)} / ${commands('cross-node-large').toFixed(2)}`,
      fmtInt(rate('direct')),
      fmtRatio(rate('direct') / rate('moleculer')),
      fmtMs(p50('direct')),
      commands('direct').toFixed(2),
      fmtInt(rate('moleculer')),
      fmtRatio(peerRatio),
      fmtMs(p50('moleculer')),
      commands('moleculer').toFixed(2),
      fmtInt(rate('redis-floor')),
      fmtMs(p50('redis-floor')),
    ];
  });
  const markdown = [
    '### Cluster: cross-node vs. same-node calls',
    '',
    `Two engine processes in cluster mode over one private redis-server; the iii-sdk caller is connected to node A, the \`bench::echo\` worker to node A (same-node) or node B (cross-node). ` +
      `Median of ${s.rounds} rounds; ${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s window per K. ` +
      `"Redis cmds/call" counts every command Redis executed during the cross-node run (INFO commandstats), heartbeats included, divided by the calls completed; "PUBLISH/call" the commands the calls cost (heartbeats publish nothing). ` +
      `The peer: the same echo call (payload \`{n, pad}\`, same K) between two Moleculer 0.15 brokers with the Redis transporter on the same redis-server (bench/peers/moleculer). ` +
      `The floor: two bare ioredis processes over the same redis-server, one PUBLISH there and one back per call, same payload size (bench/cluster/redis-pingpong.ts). ` +
      `"direct": the cross-node call with \`cluster.bus: direct\` (calls and results over node-to-node WebSocket links). ` +
      `Targets: K=1 direct p50 ≤ ${DIRECT_P50_TARGET}× same-node p50, K=64 direct ≥ ${DIRECT_MOLECULER_TARGET}× Moleculer; K=1 cross-node p50 ≤ same-node p50 + ${FLOOR_MULTIPLE}× the floor's p50; K=64 cross-node ≥ ${MOLECULER_TARGET}× Moleculer throughput; ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands per call.`,
    '',
    table(
      [
        'K (in flight)',
        'same-node calls/s',
        'cross-node calls/s',
        'ratio',
        'same-node p50 ms',
        'cross-node p50 ms',
        'Redis PUBLISH / all cmds per call',
        `the same, 3 nodes + ${FILLER_FUNCTIONS} functions`,
        'direct calls/s',
        'direct vs Moleculer',
        'direct p50 ms',
        'direct Redis cmds/call',
        'Moleculer calls/s',
        'cross-node vs Moleculer',
        'Moleculer p50 ms',
        'Moleculer Redis cmds/call',
        'Redis floor calls/s',
        'Redis floor p50 ms',
      ],
      rows,
    ),
    '',
    'CPU per call, in µs of user + system time (medians): the engine nodes (a, b, c), the iii-sdk caller and worker (for the peers, their two processes), Redis, and all of them together (what one call costs the machine).',
    '',
    table(
      ['placement', 'K', 'engine nodes', 'caller + worker (peer processes)', 'Redis', 'total'],
      cpuRows(runs, chosen, s.inflight),
    ),
  ].join('\n');
  return { markdown, checks };
}

/** One row per placement and K: the medians of its processes' CPU per call, grouped. */
function cpuRows(runs: PlacedRun[], chosen: Placement[], inflight: number[]): string[][] {
  const engine = (r: PlacedRun) =>
    Object.entries(r.cpuUsPerCall).reduce((sum, [name, us]) => (name.length === 1 ? sum + us : sum), 0);
  return chosen.flatMap((placement) =>
    inflight.map((k) => {
      const rs = runs.filter((r) => r.placement === placement && r.inflight === k);
      const m = (f: (r: PlacedRun) => number) => median(rs.map(f)).toFixed(1);
      const hasEngine = rs.some((r) => 'a' in r.cpuUsPerCall);
      return [
        placement,
        String(k),
        hasEngine ? m(engine) : '–',
        m((r) => totalCpuUs(r) - r.redisCpuUsPerCall - engine(r)),
        m((r) => r.redisCpuUsPerCall),
        m(totalCpuUs),
      ];
    }),
  );
}

export const clusterSuite: Suite = { name: 'cluster', title: 'Cluster: cross-node calls', run };
