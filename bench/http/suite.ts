import path from 'node:path';
import autocannon from 'autocannon';
import type { ServerCpu } from '../invoke/protocol';
import { BenchChild } from '../lib/child';
import { envNumber } from '../lib/env';
import { fmtInt, fmtMs, fmtRatio, fmtUs, table, joinSection, perRunDetails } from '../lib/markdown';
import { distBench } from '../lib/paths';
import { median } from '../lib/stats';
import { profileTargets, serverExecArgv } from '../lib/profile';
import { windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import { measureLatency } from './latency-client';
import {
  requestPath,
  type BindRoutes,
  type RouteCount,
  type RoutesSent,
  type ServerKind,
  type ServerReady,
  type WorkerReady,
} from './protocol';

/** Targets: engine req/s >= 0.8x the relay's; p50 with the large route table <= 1.1x the small one. */
const THROUGHPUT_TARGET = 0.8;
const ROUTE_P50_TARGET = 1.1;
/** Routes bound in the throughput sessions and the small table. */
const SMALL_TABLE = 10;

interface Settings {
  warmupMs: number;
  measureMs: number;
  rounds: number;
  connections: number;
  largeTable: number;
}

function settings(): Settings {
  return {
    ...windowSettings(2),
    connections: Math.floor(envNumber('BENCH_HTTP_CONNECTIONS', 64, 1)),
    largeTable: Math.floor(envNumber('BENCH_HTTP_ROUTES', 10_000, SMALL_TABLE + 1)),
  };
}

interface Session {
  server: BenchChild<ServerReady | ServerCpu | RouteCount>;
  worker: BenchChild<WorkerReady | RoutesSent>;
  base: string;
  stop(): Promise<void>;
}

/** Fresh server and worker processes; the worker binds `SMALL_TABLE` routes and is reachable. */
async function openSession(kind: ServerKind): Promise<Session> {
  const execArgv = serverExecArgv(profileTargets().includes(kind), `http-${kind}`);
  const server = BenchChild.fork<ServerReady | ServerCpu | RouteCount>(path.join(distBench, 'http', 'server.js'), {
    name: `${kind} http server`,
    args: [kind],
    execArgv,
  });
  const children: Array<{ stop(): Promise<void> }> = [server];
  const stop = async () => {
    for (const child of [...children].reverse()) await child.stop();
  };
  try {
    const { wsPort, httpPort } = await server.next<ServerReady>('ready', 15_000);
    const worker = BenchChild.fork<WorkerReady | RoutesSent>(path.join(distBench, 'http', 'worker.js'), {
      name: 'http worker',
      args: [`ws://127.0.0.1:${wsPort}`],
    });
    children.push(worker);
    await worker.next<WorkerReady>('ready', 15_000);
    const session = { server, worker, base: `http://127.0.0.1:${httpPort}`, stop };
    await bindRoutes(session, kind, SMALL_TABLE);
    return session;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Binds routes up to `count` and waits until they are served (the engine counts them). */
async function bindRoutes(s: Session, kind: ServerKind, count: number): Promise<void> {
  s.worker.send({ type: 'bind-routes', count } satisfies BindRoutes);
  await s.worker.next<RoutesSent>('routes-sent', 30_000);
  const deadline = Date.now() + 120_000;
  if (kind === 'engine') {
    for (;;) {
      s.server.send({ type: 'route-count' });
      if ((await s.server.next<RouteCount>('route-count', 5000)).count >= count) break;
      if (Date.now() > deadline) throw new Error(`engine did not reach ${count} routes`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  // The relay has no table; for both, the handler must answer before measuring starts.
  for (;;) {
    const res = await fetch(`${s.base}${requestPath(0)}`).catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${kind}: ${requestPath(0)} never answered 200`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function serverCpuUs(s: Session): Promise<number> {
  s.server.send({ type: 'cpu' });
  const usage = await s.server.next<ServerCpu>('cpu', 5000);
  return usage.userUs + usage.systemUs;
}

interface ThroughputRun {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  cpuUsPerReq: number;
}

async function throughputSession(kind: ServerKind, st: Settings): Promise<ThroughputRun> {
  const s = await openSession(kind);
  try {
    const url = `${s.base}${requestPath(SMALL_TABLE >> 1)}`;
    if (st.warmupMs > 0) await autocannon({ url, connections: st.connections, duration: st.warmupMs / 1000 });
    const cpuBefore = await serverCpuUs(s);
    const result = await autocannon({ url, connections: st.connections, duration: st.measureMs / 1000 });
    const cpu = (await serverCpuUs(s)) - cpuBefore;
    return {
      reqPerSec: result.requests.average,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      failures: result.errors + result.non2xx,
      cpuUsPerReq: cpu / Math.max(1, result.requests.total),
    };
  } finally {
    await s.stop();
  }
}

interface RouteRun {
  smallP50Ms: number;
  largeP50Ms: number;
  errors: number;
}

/** p50 of sequential requests with the small table, then again after growing it to `largeTable`. */
async function routeSession(st: Settings): Promise<RouteRun> {
  const s = await openSession('engine');
  try {
    const url = `${s.base}${requestPath(SMALL_TABLE >> 1)}`;
    const each = Math.max(500, st.measureMs / 2);
    await measureLatency(url, Math.max(200, st.warmupMs));
    const small = await measureLatency(url, each);
    await bindRoutes(s, 'engine', st.largeTable);
    await measureLatency(url, Math.max(200, st.warmupMs));
    const large = await measureLatency(url, each);
    return { smallP50Ms: small.p50Ms, largeP50Ms: large.p50Ms, errors: small.errors + large.errors };
  } finally {
    await s.stop();
  }
}

const mark = (pass: boolean) => (pass ? 'PASS' : 'MISS');

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const st = settings();
  log(
    `http: ${st.rounds} rounds x [relay, engine] at ${st.connections} connections, ${st.warmupMs / 1000} s warm-up + ${st.measureMs / 1000} s measure; route table ${SMALL_TABLE} vs ${st.largeTable}`,
  );
  const runs: Record<ServerKind, ThroughputRun[]> = { relay: [], engine: [] };
  const routeRuns: RouteRun[] = [];
  const detail: (string | number)[][] = [];
  for (let round = 0; round < st.rounds; round++) {
    for (const kind of ['relay', 'engine'] as ServerKind[]) {
      const r = await throughputSession(kind, st);
      runs[kind].push(r);
      detail.push([
        round + 1,
        kind,
        fmtInt(r.reqPerSec),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtUs(r.cpuUsPerReq),
        r.failures,
      ]);
      log(
        `  round ${round + 1} ${kind.padEnd(6)} ${fmtInt(r.reqPerSec).padStart(7)} req/s  p50 ${fmtMs(r.p50Ms)} ms  p99 ${fmtMs(r.p99Ms)} ms  server CPU ${fmtUs(r.cpuUsPerReq)} µs/req${r.failures ? `  failures ${r.failures}` : ''}`,
      );
    }
    const rr = await routeSession(st);
    routeRuns.push(rr);
    log(
      `  round ${round + 1} routes ${SMALL_TABLE}: p50 ${fmtMs(rr.smallP50Ms)} ms, ${st.largeTable}: p50 ${fmtMs(rr.largeP50Ms)} ms${rr.errors ? `  errors ${rr.errors}` : ''}`,
    );
  }

  const pick = (kind: ServerKind, key: keyof ThroughputRun) => median(runs[kind].map((r) => r[key]));
  const ratio = pick('engine', 'reqPerSec') / pick('relay', 'reqPerSec');
  const smallP50 = median(routeRuns.map((r) => r.smallP50Ms));
  const largeP50 = median(routeRuns.map((r) => r.largeP50Ms));
  const routeRatio = median(routeRuns.map((r) => r.largeP50Ms / r.smallP50Ms));
  const failures =
    [...runs.engine, ...runs.relay].reduce((sum, r) => sum + r.failures, 0) +
    routeRuns.reduce((sum, r) => sum + r.errors, 0);
  const checks = [
    { name: `HTTP throughput ≥ ${THROUGHPUT_TARGET}× relay`, pass: ratio >= THROUGHPUT_TARGET },
    {
      name: `p50 with ${st.largeTable} routes ≤ ${ROUTE_P50_TARGET}× ${SMALL_TABLE} routes`,
      pass: routeRatio <= ROUTE_P50_TARGET,
    },
  ];

  const markdown = joinSection([
    '### HTTP trigger: engine vs. node:http relay, and route table size',
    '',
    `autocannon (${st.connections} connections) → server → iii-sdk worker \`${'bench::http'}\` (returns \`{status_code: 200, body: {id}}\`) → server → autocannon. ` +
      `The relay is a plain node:http server forwarding each request over one WebSocket to the same worker. ` +
      `Median of ${st.rounds} alternating rounds; ${st.warmupMs / 1000} s warm-up + ${st.measureMs / 1000} s measure. ` +
      `"CPU µs/req": the server process's user+system CPU per completed request.`,
    '',
    table(
      [
        'engine req/s',
        'relay req/s',
        'ratio',
        'engine p50 ms',
        'relay p50 ms',
        'engine p99 ms',
        'relay p99 ms',
        'engine CPU µs/req',
        'relay CPU µs/req',
      ],
      [
        [
          fmtInt(pick('engine', 'reqPerSec')),
          fmtInt(pick('relay', 'reqPerSec')),
          `${fmtRatio(ratio)} ${mark(checks[0].pass)}`,
          fmtMs(pick('engine', 'p50Ms')),
          fmtMs(pick('relay', 'p50Ms')),
          fmtMs(pick('engine', 'p99Ms')),
          fmtMs(pick('relay', 'p99Ms')),
          fmtUs(pick('engine', 'cpuUsPerReq')),
          fmtUs(pick('relay', 'cpuUsPerReq')),
        ],
      ],
    ),
    '',
    `Route table: one request at a time over a keep-alive connection to \`GET ${requestPath(SMALL_TABLE >> 1)}\`, ` +
      `with ${SMALL_TABLE} routes bound, then after binding ${st.largeTable} (\`/api/r<i>/:id\`). Median over rounds of the per-round ratio.`,
    '',
    table(
      [`p50 ms, ${SMALL_TABLE} routes`, `p50 ms, ${st.largeTable} routes`, 'ratio'],
      [[fmtMs(smallP50), fmtMs(largeP50), `${fmtRatio(routeRatio)} ${mark(checks[1].pass)}`]],
    ),
    ...perRunDetails(
      failures,
      'requests',
      table(['round', 'server', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'failures'], detail, [
        'r',
        'l',
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

export const httpSuite: Suite = {
  name: 'http',
  title: 'HTTP trigger',
  run,
};
