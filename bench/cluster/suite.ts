import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../../test/support/redis';
import { BenchChild } from '../lib/child';
import { fmtInt, fmtMs, fmtRatio, table } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { median } from '../lib/stats';
import { profileTargets, serverExecArgv } from '../lib/profile';
import { inflightSettings, windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import type { CallerReady, RunRequest, RunResult, ServerReady, WorkerReady } from '../invoke/protocol';

/**
 * Targets: cross-node throughput >= 0.5x same-node, and >= 1.0x the same call between two
 * Moleculer brokers over the same Redis; at most 4 Redis commands per cross-node call.
 */
const CROSS_NODE_TARGET = 0.5;
const MOLECULER_TARGET = 1.0;
const COMMANDS_PER_CALL_TARGET = 4;

/**
 * same-node / cross-node: two nodes, the caller on A, the echo worker on A or B. cross-node-large:
 * the same call with a third node and FILLER_FUNCTIONS more functions registered, to show that
 * a call's Redis cost does not grow with nodes or functions. moleculer: the peer.
 */
type Placement = 'same-node' | 'cross-node' | 'cross-node-large' | 'moleculer';
const PLACEMENTS: Placement[] = ['same-node', 'cross-node', 'cross-node-large', 'moleculer'];
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

interface Measured extends RunResult {
  placement: Placement;
  /** Redis commands executed during the run (all of them: calls, heartbeats) per completed call. */
  redisCommandsPerCall: number;
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
  const redis = new Redis(redisUrl);
  try {
    if (placement === 'moleculer') {
      const namespace = `bench${Date.now()}`;
      const fork = (role: string) => {
        const child = BenchChild.fork<IpcOut>(path.join(MOLECULER_DIR, 'broker.js'), { name: `moleculer ${role}`, args: [role, redisUrl, namespace] });
        children.push(child);
        return child;
      };
      await fork('echo').next<WorkerReady>('ready', 30_000);
      const caller = fork('caller');
      await caller.next<WorkerReady>('ready', 30_000);
      return await measure(placement, caller, redis, s, log);
    }
    const keyPrefix = `bench${Date.now()}:`;
    const start = async (nodeId: string) => {
      const execArgv = serverExecArgv(profileTargets().includes('engine'), `cluster-${placement}-${nodeId}`);
      const node = BenchChild.fork<ServerReady>(path.join(distBench, 'cluster', 'node.js'), { name: `node ${nodeId}`, args: [nodeId, redisUrl, keyPrefix], execArgv });
      children.push(node);
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

    return await measure(placement, caller, redis, s, log);
  } finally {
    for (const child of [...children].reverse()) await child.stop();
    redis.disconnect();
  }
}

/** One run per K with the caller ready; Redis commands counted around each. */
async function measure(placement: Placement, caller: BenchChild<IpcOut>, redis: Redis, s: Settings, log: (line: string) => void): Promise<Measured[]> {
  const results: Measured[] = [];
  for (const inflight of s.inflight) {
    const before = await commandsSoFar(redis);
    caller.send({ type: 'run', inflight, warmupMs: s.warmupMs, measureMs: s.measureMs } satisfies RunRequest);
    const result = await caller.next<RunResult>('result', s.warmupMs + s.measureMs + 60_000);
    // INFO itself counts as one command.
    const commands = (await commandsSoFar(redis)) - before - 1;
    const measured: Measured = { ...result, placement, redisCommandsPerCall: commands / result.totalCalls };
    log(`  ${placement.padEnd(10)} K=${String(inflight).padEnd(3)} ${fmtInt(result.callsPerSec).padStart(7)} calls/s  p50 ${fmtMs(result.p50Ms)} ms  Redis ${measured.redisCommandsPerCall.toFixed(2)} cmds/call`);
    results.push(measured);
  }
  return results;
}

type IpcOut = CallerReady | WorkerReady | RunResult;

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = settings();
  log(`cluster: ${s.rounds} rounds x [${PLACEMENTS.join(', ')}], K = ${s.inflight.join(', ')}, private redis-server`);
  let redis: TestRedis | undefined;
  const runs: Measured[] = [];
  try {
    ensureMoleculer(log);
    redis = await startRedis();
    for (let round = 0; round < s.rounds; round++) {
      for (const placement of PLACEMENTS) runs.push(...(await session(placement, redis.url, s, log)));
    }
  } finally {
    await redis?.stop();
  }
  const checks: SuiteResult['checks'] = [];
  const rows = s.inflight.map((inflight) => {
    const pick = (p: Placement) => runs.filter((r) => r.placement === p && r.inflight === inflight);
    const same = median(pick('same-node').map((r) => r.callsPerSec));
    const cross = median(pick('cross-node').map((r) => r.callsPerSec));
    const moleculer = median(pick('moleculer').map((r) => r.callsPerSec));
    const commands = median(pick('cross-node').map((r) => r.redisCommandsPerCall));
    const commandsLarge = median(pick('cross-node-large').map((r) => r.redisCommandsPerCall));
    const ratio = cross / same;
    const peerRatio = cross / moleculer;
    checks.push({ name: `K=${inflight} cross-node ≥ ${CROSS_NODE_TARGET}× same-node`, pass: ratio >= CROSS_NODE_TARGET });
    checks.push({ name: `K=${inflight} cross-node ≥ ${MOLECULER_TARGET}× Moleculer`, pass: peerRatio >= MOLECULER_TARGET });
    checks.push({
      name: `K=${inflight} ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands per cross-node call (2 and 3 nodes)`,
      pass: commands <= COMMANDS_PER_CALL_TARGET && commandsLarge <= COMMANDS_PER_CALL_TARGET,
    });
    return [
      inflight,
      fmtInt(same),
      fmtInt(cross),
      fmtRatio(ratio),
      fmtMs(median(pick('same-node').map((r) => r.p50Ms))),
      fmtMs(median(pick('cross-node').map((r) => r.p50Ms))),
      commands.toFixed(2),
      commandsLarge.toFixed(2),
      fmtInt(moleculer),
      fmtRatio(peerRatio),
      fmtMs(median(pick('moleculer').map((r) => r.p50Ms))),
      median(pick('moleculer').map((r) => r.redisCommandsPerCall)).toFixed(2),
    ];
  });
  const markdown = [
    '### Cluster: cross-node vs. same-node calls',
    '',
    `Two engine processes in cluster mode over one private redis-server; the iii-sdk caller is connected to node A, the \`bench::echo\` worker to node A (same-node) or node B (cross-node). ` +
      `Median of ${s.rounds} rounds; ${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s window per K. ` +
      `"Redis cmds/call" counts every command Redis executed during the cross-node run (INFO commandstats), heartbeats included, divided by the calls completed. ` +
      `The peer: the same echo call (payload \`{n, pad}\`, same K) between two Moleculer 0.15 brokers with the Redis transporter on the same redis-server (bench/peers/moleculer). ` +
      `Targets: cross-node ≥ ${CROSS_NODE_TARGET}× same-node and ≥ ${MOLECULER_TARGET}× Moleculer throughput, ≤ ${COMMANDS_PER_CALL_TARGET} Redis commands per call.`,
    '',
    table(
      ['K (in flight)', 'same-node calls/s', 'cross-node calls/s', 'ratio', 'same-node p50 ms', 'cross-node p50 ms', 'Redis cmds/call', `Redis cmds/call, 3 nodes + ${FILLER_FUNCTIONS} functions`, 'Moleculer calls/s', 'cross-node vs Moleculer', 'Moleculer p50 ms', 'Moleculer Redis cmds/call'],
      rows,
    ),
  ].join('\n');
  return { markdown, checks };
}

export const clusterSuite: Suite = { name: 'cluster', title: 'Cluster: cross-node calls', run };
