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
import { profileTargets, serverExecArgv } from '../lib/profile';
import { inflightSettings, windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import type { CallerReady, RunRequest, RunResult, ServerCpu, ServerReady, WorkerReady } from '../invoke/protocol';

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
  if (unknown.length) throw new Error(`BENCH_PLACEMENTS: unknown ${unknown.join(', ')}; available: ${PLACEMENTS.join(', ')}`);
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

/**
 * The engine nodes run from this build (BENCH_ENGINE_DIST=<other checkout>/dist, for a
 * before/after pair of builds measured alternately on the same machine); this one by default.
 */
function engineDistBench(): string {
  const other = process.env.BENCH_ENGINE_DIST;
  return other ? path.join(path.resolve(other), 'bench') : distBench;
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

interface Measured extends RunResult {
  placement: Placement;
  /** Redis commands executed during the run (all of them: calls, heartbeats) per completed call. */
  redisCommandsPerCall: number;
  /** CPU time (user + system) per completed call: each engine node (A, B, ...) and Redis, in µs. */
  nodeCpuUsPerCall: number[];
  redisCpuUsPerCall: number;
}

/** Redis's CPU time so far (INFO cpu, used_cpu_sys + used_cpu_user), in µs. */
async function redisCpuSoFar(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

/** An engine node's CPU time so far (its answer to `{type:'cpu'}`), in µs. */
async function nodeCpuSoFar(node: BenchChild<ServerReady | ServerCpu>): Promise<number> {
  node.send({ type: 'cpu' });
  const usage = await node.next<ServerCpu>('cpu', 5000);
  return usage.userUs + usage.systemUs;
}

/** All commands Redis has executed so far (sum of `calls=` in INFO commandstats). */
async function commandsSoFar(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) total += Number(match[1]);
  return total;
}

/**
 * Two cluster nodes A and B over one Redis; the caller is on A, the echo worker on A or B. For
 * `moleculer`, two brokers over the same Redis instead: an `echo.echo` service and a caller.
 */
async function session(placement: Placement, redisUrl: string, s: Settings, log: (line: string) => void): Promise<Measured[]> {
  const children: { stop(): Promise<void> }[] = [];
  const nodes: BenchChild<ServerReady | ServerCpu>[] = [];
  const redis = new Redis(redisUrl);
  try {
    if (placement === 'moleculer' || placement === 'redis-floor') {
      const namespace = `bench${Date.now()}`;
      const script = placement === 'moleculer' ? path.join(MOLECULER_DIR, 'broker.js') : path.join(distBench, 'cluster', 'redis-pingpong.js');
      const fork = (role: string) => {
        const child = BenchChild.fork<IpcOut>(script, { name: `${placement} ${role}`, args: [role, redisUrl, namespace] });
        children.push(child);
        return child;
      };
      await fork('echo').next<WorkerReady>('ready', 30_000);
      const caller = fork('caller');
      await caller.next<WorkerReady>('ready', 30_000);
      return await measure(placement, caller, redis, [], s, log);
    }
    const keyPrefix = `bench${Date.now()}:`;
    const start = async (nodeId: string) => {
      const execArgv = serverExecArgv(profileTargets().includes('engine'), `cluster-${placement}-${nodeId}`);
      const node = BenchChild.fork<ServerReady | ServerCpu>(path.join(engineDistBench(), 'cluster', 'node.js'), {
        name: `node ${nodeId}`,
        args: [nodeId, redisUrl, keyPrefix, placement === 'direct' ? 'direct' : 'redis'],
        execArgv,
      });
      children.push(node);
      nodes.push(node);
      return `ws://127.0.0.1:${(await node.next<ServerReady>('ready', 15_000)).port}`;
    };
    const urlA = await start('a');
    const urlB = await start('b');
    if (placement === 'cross-node-large') {
      const filler = BenchChild.fork<WorkerReady>(path.join(distBench, 'cluster', 'filler-worker.js'), { name: 'filler worker', args: [await start('c'), String(FILLER_FUNCTIONS)] });
      children.push(filler);
      await filler.next<WorkerReady>('ready', 15_000);
    }
    const worker = BenchChild.fork<WorkerReady>(path.join(distBench, 'invoke', 'echo-worker.js'), { name: 'echo worker', args: [placement === 'same-node' ? urlA : urlB] });
    children.push(worker);
    await worker.next<WorkerReady>('ready', 15_000);
    const caller = BenchChild.fork<IpcOut>(path.join(distBench, 'invoke', 'caller.js'), { name: 'caller', args: [urlA] });
    children.push(caller);
    await caller.next<CallerReady>('ready', 30_000);

    return await measure(placement, caller, redis, nodes, s, log);
  } finally {
    for (const child of [...children].reverse()) await child.stop();
    redis.disconnect();
  }
}

/** One run per K with the caller ready; Redis commands counted around each. */
async function measure(
  placement: Placement,
  caller: BenchChild<IpcOut>,
  redis: Redis,
  nodes: BenchChild<ServerReady | ServerCpu>[],
  s: Settings,
  log: (line: string) => void,
): Promise<Measured[]> {
  const results: Measured[] = [];
  const cpuSoFar = () => Promise.all([redisCpuSoFar(redis), ...nodes.map(nodeCpuSoFar)]);
  for (const inflight of s.inflight) {
    const cpuBefore = await cpuSoFar();
    const before = await commandsSoFar(redis);
    caller.send({ type: 'run', inflight, warmupMs: s.warmupMs, measureMs: s.measureMs } satisfies RunRequest);
    const result = await caller.next<RunResult>('result', s.warmupMs + s.measureMs + 60_000);
    // INFO itself counts as one command.
    const commands = (await commandsSoFar(redis)) - before - 1;
    const [redisCpu, ...nodeCpu] = (await cpuSoFar()).map((cpu, i) => (cpu - cpuBefore[i]) / result.totalCalls);
    const measured: Measured = { ...result, placement, redisCommandsPerCall: commands / result.totalCalls, nodeCpuUsPerCall: nodeCpu, redisCpuUsPerCall: redisCpu };
    const cpu = [...nodeCpu.map((us, i) => `${String.fromCharCode(65 + i)} ${us.toFixed(0)}`), `Redis ${redisCpu.toFixed(0)}`].join(', ');
    log(
      `  ${placement.padEnd(10)} K=${String(inflight).padEnd(3)} ${fmtInt(result.callsPerSec).padStart(7)} calls/s  p50 ${fmtMs(result.p50Ms)} ms  Redis ${measured.redisCommandsPerCall.toFixed(2)} cmds/call  CPU µs/call ${cpu}`,
    );
    results.push(measured);
  }
  return results;
}

type IpcOut = CallerReady | WorkerReady | RunResult;

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = settings();
  const chosen = placements();
  log(`cluster: ${s.rounds} rounds x [${chosen.join(', ')}], K = ${s.inflight.join(', ')}, private redis-server`);
  let redis: TestRedis | undefined;
  const runs: Measured[] = [];
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
    const peerRatio = rate('cross-node') / rate('moleculer');
    if (inflight === 1) {
      const bound = p50('same-node') + FLOOR_MULTIPLE * p50('redis-floor');
      checks.push({ name: `K=1 cross-node p50 ≤ same-node p50 + ${FLOOR_MULTIPLE}× Redis ping-pong (${fmtMs(bound)} ms)`, pass: p50('cross-node') <= bound });
    } else {
      checks.push({ name: `K=${inflight} cross-node ≥ ${MOLECULER_TARGET}× Moleculer`, pass: peerRatio >= MOLECULER_TARGET });
    }
    if (inflight === 1) {
      checks.push({ name: `K=1 direct p50 ≤ ${DIRECT_P50_TARGET}× same-node p50`, pass: p50('direct') <= DIRECT_P50_TARGET * p50('same-node') });
    } else {
      checks.push({ name: `K=${inflight} direct ≥ ${DIRECT_MOLECULER_TARGET}× Moleculer`, pass: rate('direct') / rate('moleculer') >= DIRECT_MOLECULER_TARGET });
    }
    checks.push({
      name: `K=${inflight} ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands per cross-node call (2 and 3 nodes)`,
      pass: commands('cross-node') <= COMMANDS_PER_CALL_TARGET && commands('cross-node-large') <= COMMANDS_PER_CALL_TARGET,
    });
    return [
      inflight,
      fmtInt(rate('same-node')),
      fmtInt(rate('cross-node')),
      fmtRatio(rate('cross-node') / rate('same-node')),
      fmtMs(p50('same-node')),
      fmtMs(p50('cross-node')),
      commands('cross-node').toFixed(2),
      commands('cross-node-large').toFixed(2),
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
      `"Redis cmds/call" counts every command Redis executed during the cross-node run (INFO commandstats), heartbeats included, divided by the calls completed. ` +
      `The peer: the same echo call (payload \`{n, pad}\`, same K) between two Moleculer 0.15 brokers with the Redis transporter on the same redis-server (bench/peers/moleculer). ` +
      `The floor: two bare ioredis processes over the same redis-server, one PUBLISH there and one back per call, same payload size (bench/cluster/redis-pingpong.ts). ` +
      `"direct": the cross-node call with \`cluster.bus: direct\` (calls and results over node-to-node WebSocket links). ` +
      `Targets: K=1 direct p50 ≤ ${DIRECT_P50_TARGET}× same-node p50, K=64 direct ≥ ${DIRECT_MOLECULER_TARGET}× Moleculer; K=1 cross-node p50 ≤ same-node p50 + ${FLOOR_MULTIPLE}× the floor's p50; K=64 cross-node ≥ ${MOLECULER_TARGET}× Moleculer throughput; ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands per call.`,
    '',
    table(
      ['K (in flight)', 'same-node calls/s', 'cross-node calls/s', 'ratio', 'same-node p50 ms', 'cross-node p50 ms', 'Redis cmds/call', `Redis cmds/call, 3 nodes + ${FILLER_FUNCTIONS} functions`, 'direct calls/s', 'direct vs Moleculer', 'direct p50 ms', 'direct Redis cmds/call', 'Moleculer calls/s', 'cross-node vs Moleculer', 'Moleculer p50 ms', 'Moleculer Redis cmds/call', 'Redis floor calls/s', 'Redis floor p50 ms'],
      rows,
    ),
  ].join('\n');
  return { markdown, checks };
}

export const clusterSuite: Suite = { name: 'cluster', title: 'Cluster: cross-node calls', run };
