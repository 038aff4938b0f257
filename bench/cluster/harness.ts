import path from 'node:path';
import type { Redis } from 'ioredis';
import type { ClusterBus } from '../../src/config/types';
import { BenchChild } from '../lib/child';
import { fmtInt, fmtMs } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { profileTargets, serverExecArgv } from '../lib/profile';
import type { CallerReady, RunRequest, RunResult, ServerCpu, ServerReady, WorkerReady } from '../invoke/protocol';

/** The cluster suites' children (engine nodes, iii-sdk workers and callers, peers) and what they say. */
export type Caller = BenchChild<ServerReady | ServerCpu | CallerReady | WorkerReady | RunResult>;

/** A process whose CPU time a run is priced with: engine nodes `a`, `b`..., `caller`, `worker`, a peer's two. */
export interface Priced {
  name: string;
  child: Caller;
}

/**
 * The engine nodes run from this build (BENCH_ENGINE_DIST=<other checkout>/dist, for a
 * before/after pair of builds measured alternately on the same machine); this one by default.
 */
function engineDistBench(): string {
  const other = process.env.BENCH_ENGINE_DIST;
  return other ? path.join(path.resolve(other), 'bench') : distBench;
}

export interface ClusterLayout {
  redisUrl: string;
  /** Names the profiles (`cluster-<label>-<node>`). */
  label: string;
  /** Engine nodes a, b, c, ...; at least 2. */
  nodes: number;
  bus: ClusterBus;
  /** The node the echo worker connects to (the caller is always on node a). */
  workerNode: number;
  /** Functions a filler worker registers on the last node (none when 0). */
  fillerFunctions: number;
  /** Size of the `pad` string each call carries (default 32 bytes). */
  payloadBytes?: number;
  /** Records of about 100 bytes each the call carries besides `pad` (none when absent). */
  rows?: number;
}

export interface RunningCluster {
  caller: Caller;
  /** Every process of the session but the filler worker, engine nodes first. */
  processes: Priced[];
  stop(): Promise<void>;
}

/** Starts the nodes, the filler and echo workers and the caller of `layout`; `stop` ends them all, in reverse. */
export async function startBenchCluster(layout: ClusterLayout): Promise<RunningCluster> {
  const children: { stop(): Promise<void> }[] = [];
  const processes: Priced[] = [];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
  };
  try {
    const keyPrefix = `bench${Date.now()}:`;
    const urls: string[] = [];
    for (let i = 0; i < layout.nodes; i++) {
      const nodeId = String.fromCharCode(97 + i);
      const execArgv = serverExecArgv(profileTargets().includes('engine'), `cluster-${layout.label}-${nodeId}`);
      const node: Caller = BenchChild.fork(path.join(engineDistBench(), 'cluster', 'node.js'), {
        name: `node ${nodeId}`,
        args: [nodeId, layout.redisUrl, keyPrefix, layout.bus],
        execArgv,
      });
      children.push(node);
      processes.push({ name: nodeId, child: node });
      urls.push(`ws://127.0.0.1:${(await node.next<ServerReady>('ready', 15_000)).port}`);
    }
    const fork = (script: string, name: string, args: string[]) => {
      const child: Caller = BenchChild.fork(path.join(distBench, script), { name, args });
      children.push(child);
      return child;
    };
    if (layout.fillerFunctions > 0)
      await fork('cluster/filler-worker.js', 'filler worker', [
        urls[layout.nodes - 1],
        String(layout.fillerFunctions),
      ]).next<WorkerReady>('ready', 15_000);
    const worker = fork('invoke/echo-worker.js', 'echo worker', [urls[layout.workerNode]]);
    await worker.next<WorkerReady>('ready', 15_000);
    const caller = fork('invoke/caller.js', 'caller', [
      urls[0],
      String(layout.payloadBytes ?? 32),
      String(layout.rows ?? 0),
    ]);
    await caller.next<CallerReady>('ready', 30_000);
    processes.push({ name: 'caller', child: caller }, { name: 'worker', child: worker });
    return { caller, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One measured run at K `inflight`, with what Redis and each node spent on it. */
export interface Measured extends RunResult {
  /** Redis commands executed during the run (all of them: calls, heartbeats) per completed call. */
  redisCommandsPerCall: number;
  /** Of those, the PUBLISHes: the commands the calls themselves cost (heartbeats publish nothing). */
  redisPublishesPerCall: number;
  /** CPU time (user + system) per completed call, in µs: each priced process by name, and Redis. */
  cpuUsPerCall: Record<string, number>;
  redisCpuUsPerCall: number;
}

/** The CPU µs per call of every process of the run and Redis together: what the whole call costs the machine. */
export function totalCpuUs(m: Measured): number {
  return Object.values(m.cpuUsPerCall).reduce((sum, us) => sum + us, m.redisCpuUsPerCall);
}

export interface Window {
  warmupMs: number;
  measureMs: number;
}

/** Runs the caller at K `inflight`; counts Redis commands and the CPU time of Redis and each node around it. */
export async function measureRun(
  caller: Caller,
  redis: Redis,
  processes: Priced[],
  inflight: number,
  window: Window,
): Promise<Measured> {
  const cpuSoFar = () => Promise.all([redisCpuSoFar(redis), ...processes.map((p) => cpuOf(p.child))]);
  const cpuBefore = await cpuSoFar();
  const before = await commandsSoFar(redis);
  caller.send({ type: 'run', inflight, warmupMs: window.warmupMs, measureMs: window.measureMs } satisfies RunRequest);
  const result = await caller.next<RunResult>('result', window.warmupMs + window.measureMs + 60_000);
  // INFO itself counts as one command.
  const after = await commandsSoFar(redis);
  const commands = after.all - before.all - 1;
  const [redisCpu = Number.NaN, ...cpu] = (await cpuSoFar()).map((us, i) => (us - cpuBefore[i]) / result.totalCalls);
  const cpuUsPerCall = Object.fromEntries(processes.map((p, i) => [p.name, cpu[i]]));
  return {
    ...result,
    redisCommandsPerCall: commands / result.totalCalls,
    redisPublishesPerCall: (after.publish - before.publish) / result.totalCalls,
    cpuUsPerCall,
    redisCpuUsPerCall: redisCpu,
  };
}

/** One progress line: throughput, p50, Redis commands and CPU per call. */
export function describeRun(label: string, m: Measured): string {
  const cpu = [
    ...Object.entries(m.cpuUsPerCall).map(([name, us]) => `${name} ${us.toFixed(0)}`),
    `Redis ${m.redisCpuUsPerCall.toFixed(0)}`,
  ].join(', ');
  return `  ${label.padEnd(16)} K=${String(m.inflight).padEnd(3)} ${fmtInt(m.callsPerSec).padStart(7)} calls/s  p50 ${fmtMs(m.p50Ms)} ms  Redis ${m.redisCommandsPerCall.toFixed(2)} cmds/call (${m.redisPublishesPerCall.toFixed(2)} PUBLISH)  CPU µs/call ${cpu} (total ${totalCpuUs(m).toFixed(0)})`;
}

/** Redis's CPU time so far (INFO cpu, used_cpu_sys + used_cpu_user), in µs. */
async function redisCpuSoFar(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

/** A child's CPU time so far (its answer to `{type:'cpu'}`, see serveParent), in µs. */
async function cpuOf(child: Priced['child']): Promise<number> {
  child.send({ type: 'cpu' });
  const usage = await child.next<ServerCpu>('cpu', 5000);
  return usage.userUs + usage.systemUs;
}

/** The commands Redis has executed so far (sum of `calls=` in INFO commandstats), and the PUBLISHes among them. */
async function commandsSoFar(redis: Redis): Promise<{ all: number; publish: number }> {
  const info = await redis.info('commandstats');
  let all = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) all += Number(match[1]);
  return { all, publish: Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0) };
}
