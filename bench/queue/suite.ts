import path from 'node:path';
import { BenchChild } from '../lib/child';
import { fmtInt, fmtMs, fmtRatio, fmtUs, table, joinSection, perRunDetails } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { median } from '../lib/stats';
import { inflightSettings, windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import type { DriverReady, Mode, RunRequest, RunResult, ServerCpu, ServerReady } from './protocol';

/** Target: queue jobs/s >= 0.5x the synchronous calls/s of the same worker at the same K. */
const THROUGHPUT_TARGET = 0.5;

interface Settings {
  warmupMs: number;
  measureMs: number;
  rounds: number;
  inflight: number[];
}

function settings(): Settings {
  return { ...windowSettings(2), inflight: inflightSettings() };
}

/**
 * One session: a fresh engine and driver; for each K both modes, their order alternating by
 * round so drift over a session does not favour either.
 */
async function session(round: number, s: Settings, log: (line: string) => void): Promise<RunResult[]> {
  const children: { stop(): Promise<void> }[] = [];
  try {
    const server = BenchChild.fork<ServerReady | ServerCpu>(path.join(distBench, 'queue', 'server.js'), {
      name: 'queue engine',
      args: [s.inflight.join(',')],
    });
    children.push(server);
    const { port } = await server.next<ServerReady>('ready', 15_000);
    const driver = BenchChild.fork<DriverReady | RunResult>(path.join(distBench, 'queue', 'driver.js'), {
      name: 'queue driver',
      args: [`ws://127.0.0.1:${port}`],
    });
    children.push(driver);
    await driver.next<DriverReady>('ready', 30_000);

    const cpu = async () => {
      server.send({ type: 'cpu' });
      const usage = await server.next<ServerCpu>('cpu', 5000);
      return usage.userUs + usage.systemUs;
    };
    const modes: Mode[] = round % 2 === 0 ? ['sync', 'queue'] : ['queue', 'sync'];
    const results: RunResult[] = [];
    for (const inflight of s.inflight) {
      for (const mode of modes) {
        const cpuBefore = await cpu();
        driver.send({ type: 'run', mode, inflight, warmupMs: s.warmupMs, measureMs: s.measureMs } satisfies RunRequest);
        const result = await driver.next<RunResult>('result', s.warmupMs + s.measureMs + 60_000);
        result.serverCpuUsPerJob = ((await cpu()) - cpuBefore) / result.totalJobs;
        log(
          `  round ${round + 1} ${mode.padEnd(5)} K=${String(inflight).padEnd(3)} ${fmtInt(result.jobsPerSec).padStart(7)} jobs/s  ` +
            `p50 ${fmtMs(result.p50Ms)} ms  p99 ${fmtMs(result.p99Ms)} ms  server CPU ${fmtUs(result.serverCpuUsPerJob)} µs/job${result.errors ? `  errors ${result.errors}` : ''}`,
        );
        results.push(result);
      }
    }
    return results;
  } finally {
    for (const child of [...children].reverse()) await child.stop();
  }
}

const mark = (pass: boolean) => (pass ? 'PASS' : 'MISS');

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = settings();
  log(
    `queue: ${s.rounds} rounds x [sync, queue], K = ${s.inflight.join(', ')}, ${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s measure per run`,
  );
  const all: RunResult[] = [];
  const detail: (string | number)[][] = [];
  for (let round = 0; round < s.rounds; round++) {
    for (const r of await session(round, s, log)) {
      all.push(r);
      detail.push([
        round + 1,
        r.mode,
        r.inflight,
        fmtInt(r.jobsPerSec),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtUs(r.serverCpuUsPerJob),
        r.errors,
      ]);
    }
  }

  const checks: SuiteResult['checks'] = [];
  let errors = 0;
  const rows = s.inflight.map((k) => {
    const pick = (mode: Mode) => {
      const rs = all.filter((r) => r.mode === mode && r.inflight === k);
      errors += rs.reduce((sum, r) => sum + r.errors, 0);
      return {
        jobsPerSec: median(rs.map((r) => r.jobsPerSec)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        cpuUs: median(rs.map((r) => r.serverCpuUsPerJob ?? Number.NaN)),
      };
    };
    const sync = pick('sync');
    const queue = pick('queue');
    const ratio = queue.jobsPerSec / sync.jobsPerSec;
    const pass = ratio >= THROUGHPUT_TARGET;
    checks.push({ name: `K=${k} queue jobs/s ≥ ${THROUGHPUT_TARGET}× sync`, pass });
    return [
      k,
      fmtInt(queue.jobsPerSec),
      fmtInt(sync.jobsPerSec),
      `${fmtRatio(ratio)} ${mark(pass)}`,
      fmtMs(queue.p50Ms),
      fmtMs(sync.p50Ms),
      fmtMs(queue.p99Ms),
      fmtMs(sync.p99Ms),
      fmtUs(queue.cpuUs),
      fmtUs(sync.cpuUs),
    ];
  });

  const markdown = joinSection([
    '### Queue throughput: enqueue → worker vs. synchronous calls',
    '',
    `One iii-sdk worker serves \`bench::job\` and produces the load. **queue**: K loops enqueue \`bench::job\` on a named ` +
      `queue of concurrency K (memory adapter), at most 4K jobs outstanding; jobs/s counted where the worker handles them; ` +
      `latency from the start of the enqueue call to the handler running. **sync** (baseline): K loops of synchronous calls ` +
      `to the same function; latency = round trip. Median of ${s.rounds} rounds, order alternating; ` +
      `${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s window per run. Target: queue ≥ ${THROUGHPUT_TARGET}× sync.`,
    '',
    table(
      [
        'K',
        'queue jobs/s',
        'sync calls/s',
        'ratio',
        'queue p50 ms',
        'sync p50 ms',
        'queue p99 ms',
        'sync p99 ms',
        'queue CPU µs/job',
        'sync CPU µs/job',
      ],
      rows,
    ),
    ...perRunDetails(
      errors,
      'calls',
      table(['round', 'mode', 'K', 'jobs/s', 'p50 ms', 'p99 ms', 'server CPU µs/job', 'errors'], detail, [
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

export const queueSuite: Suite = {
  name: 'queue',
  title: 'Queue throughput',
  run,
};
