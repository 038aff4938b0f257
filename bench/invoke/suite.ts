import path from 'node:path';
import { BenchChild } from '../lib/child';
import { fmtInt, fmtMs, fmtRatio, fmtUs, table, joinSection, perRunDetails } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { median } from '../lib/stats';
import { profileTargets, serverExecArgv } from '../lib/profile';
import { inflightSettings, windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import type { CallerReady, RunRequest, RunResult, ServerCpu, ServerKind, ServerReady, WorkerReady } from './protocol';

/** Targets: engine throughput >= 0.8x the relay's, engine p50 <= 1.3x the relay's. */
const THROUGHPUT_TARGET = 0.8;
const P50_TARGET = 1.3;

interface Settings {
  warmupMs: number;
  measureMs: number;
  rounds: number;
  inflight: number[];
  /** Servers run under `node --cpu-prof` (BENCH_PROFILE=1|engine, relay, both). */
  profile: ServerKind[];
}

function settings(): Settings {
  return { ...windowSettings(2), inflight: inflightSettings(), profile: profileTargets() };
}

const SERVER_ORDER: ServerKind[] = ['relay', 'engine'];

/**
 * One session: fresh server, echo worker and caller processes; one measurement per K; then
 * everything is stopped (and SIGKILLed if it lingers) before the next session starts.
 */
async function session(
  kind: ServerKind,
  round: number,
  s: Settings,
  log: (line: string) => void,
): Promise<RunResult[]> {
  const children: { stop(): Promise<void> }[] = [];
  try {
    const execArgv = serverExecArgv(s.profile.includes(kind), `${kind}-round${round + 1}`);
    const server = BenchChild.fork<ServerReady | ServerCpu>(path.join(distBench, 'invoke', 'server.js'), {
      name: `${kind} server`,
      args: [kind],
      execArgv,
    });
    children.push(server);
    const { port } = await server.next<ServerReady>('ready', 15_000);
    const url = `ws://127.0.0.1:${port}`;

    const worker = BenchChild.fork<WorkerReady>(path.join(distBench, 'invoke', 'echo-worker.js'), {
      name: 'echo worker',
      args: [url],
    });
    children.push(worker);
    await worker.next<WorkerReady>('ready', 15_000);

    const caller = BenchChild.fork<CallerReady | RunResult>(path.join(distBench, 'invoke', 'caller.js'), {
      name: 'caller',
      args: [url],
    });
    children.push(caller);
    await caller.next<CallerReady>('ready', 30_000);

    const results: RunResult[] = [];
    const cpu = async () => {
      server.send({ type: 'cpu' });
      const usage = await server.next<ServerCpu>('cpu', 5000);
      return usage.userUs + usage.systemUs;
    };
    for (const inflight of s.inflight) {
      const cpuBefore = await cpu();
      caller.send({ type: 'run', inflight, warmupMs: s.warmupMs, measureMs: s.measureMs } satisfies RunRequest);
      const result = await caller.next<RunResult>('result', s.warmupMs + s.measureMs + 60_000);
      result.serverCpuUsPerCall = ((await cpu()) - cpuBefore) / result.totalCalls;
      log(
        `  round ${round + 1} ${kind.padEnd(6)} K=${String(inflight).padEnd(3)} ${fmtInt(result.callsPerSec).padStart(7)} calls/s  ` +
          `p50 ${fmtMs(result.p50Ms)} ms  p99 ${fmtMs(result.p99Ms)} ms  server CPU ${fmtUs(result.serverCpuUsPerCall)} µs/call${result.errors ? `  errors ${result.errors}` : ''}`,
      );
      results.push(result);
    }
    return results;
  } finally {
    // Clients first, so the server sees ordinary disconnects before it is stopped.
    for (const child of [...children].reverse()) await child.stop();
  }
}

interface Summary {
  inflight: number;
  engine: { callsPerSec: number; p50Ms: number; p99Ms: number; cpuUs: number };
  relay: { callsPerSec: number; p50Ms: number; p99Ms: number; cpuUs: number };
  throughputRatio: number;
  p50Ratio: number;
  errors: number;
}

function summarize(runs: Map<ServerKind, RunResult[]>, inflight: number): Summary {
  const pick = (kind: ServerKind) => {
    const rs = (runs.get(kind) ?? []).filter((r) => r.inflight === inflight);
    return {
      callsPerSec: median(rs.map((r) => r.callsPerSec)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      cpuUs: median(rs.map((r) => r.serverCpuUsPerCall ?? Number.NaN)),
      errors: rs.reduce((sum, r) => sum + r.errors, 0),
    };
  };
  const engine = pick('engine');
  const relay = pick('relay');
  return {
    inflight,
    engine,
    relay,
    throughputRatio: engine.callsPerSec / relay.callsPerSec,
    p50Ratio: engine.p50Ms / relay.p50Ms,
    errors: engine.errors + relay.errors,
  };
}

const mark = (pass: boolean) => (pass ? 'PASS' : 'MISS');

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = settings();
  log(
    `invoke: ${s.rounds} rounds x [${SERVER_ORDER.join(', ')}], K = ${s.inflight.join(', ')}, ` +
      `${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s measure per K${s.profile.length ? `, CPU profile of ${s.profile.join(' + ')} in bench/results/profiles/` : ''}`,
  );
  const runs = new Map<ServerKind, RunResult[]>(SERVER_ORDER.map((k) => [k, []]));
  const detail: (string | number)[][] = [];
  for (let round = 0; round < s.rounds; round++) {
    for (const kind of SERVER_ORDER) {
      const results = await session(kind, round, s, log);
      runs.get(kind)!.push(...results);
      for (const r of results) {
        detail.push([
          round + 1,
          kind,
          r.inflight,
          fmtInt(r.callsPerSec),
          fmtMs(r.p50Ms),
          fmtMs(r.p99Ms),
          fmtUs(r.serverCpuUsPerCall),
          r.errors,
        ]);
      }
    }
  }

  const summaries = s.inflight.map((k) => summarize(runs, k));
  const checks: SuiteResult['checks'] = [];
  const rows = summaries.map((x) => {
    const tputPass = x.throughputRatio >= THROUGHPUT_TARGET;
    const p50Pass = x.p50Ratio <= P50_TARGET;
    checks.push({ name: `K=${x.inflight} throughput ≥ ${THROUGHPUT_TARGET}× relay`, pass: tputPass });
    checks.push({ name: `K=${x.inflight} p50 ≤ ${P50_TARGET}× relay`, pass: p50Pass });
    return [
      x.inflight,
      fmtInt(x.engine.callsPerSec),
      fmtInt(x.relay.callsPerSec),
      `${fmtRatio(x.throughputRatio)} ${mark(tputPass)}`,
      fmtMs(x.engine.p50Ms),
      fmtMs(x.relay.p50Ms),
      `${fmtRatio(x.p50Ratio)} ${mark(p50Pass)}`,
      fmtMs(x.engine.p99Ms),
      fmtMs(x.relay.p99Ms),
      fmtUs(x.engine.cpuUs),
      fmtUs(x.relay.cpuUs),
    ];
  });
  const totalErrors = summaries.reduce((sum, x) => sum + x.errors, 0);

  const markdown = joinSection([
    '### Invocation round trips: engine vs. WebSocket relay',
    '',
    `iii-sdk caller → server → iii-sdk \`bench::echo\` worker → server → caller; payload \`{n, pad: 32-byte string}\`. ` +
      `Median of ${s.rounds} alternating rounds per configuration; ${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s measuring window per K. ` +
      `Targets: throughput ≥ ${THROUGHPUT_TARGET}× relay, p50 ≤ ${P50_TARGET}× relay. ` +
      `"CPU µs/call": the server process's user+system CPU time over warm-up + window divided by the calls completed in it, ` +
      `i.e. what one round trip (two hops) costs the server; at K=1 it includes the cost of waking an idle process for every frame.`,
    '',
    s.profile.length || process.env.BENCH_SERVER_NODE_ARGS
      ? `> **Instrumented run** (BENCH_PROFILE / BENCH_SERVER_NODE_ARGS set): timings are not representative.\n`
      : '',
    table(
      [
        'K (in flight)',
        'engine calls/s',
        'relay calls/s',
        'throughput ratio',
        'engine p50 ms',
        'relay p50 ms',
        'p50 ratio',
        'engine p99 ms',
        'relay p99 ms',
        'engine CPU µs/call',
        'relay CPU µs/call',
      ],
      rows,
    ),
    ...perRunDetails(
      totalErrors,
      'calls',
      table(['round', 'server', 'K', 'calls/s', 'p50 ms', 'p99 ms', 'server CPU µs/call', 'errors'], detail, [
        'r',
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
        'r',
      ]),
    ),
  ]);
  return { markdown, checks };
}

export const invokeSuite: Suite = {
  name: 'invoke',
  title: 'Invocation round trips',
  run,
};
