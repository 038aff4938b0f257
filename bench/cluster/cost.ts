import { Redis } from 'ioredis';
import type { ClusterBus } from '../../src/config/types';
import { startRedis, type TestRedis } from '../../test/support/redis';
import { envList } from '../lib/env';
import { fmtInt, fmtMs, table } from '../lib/markdown';
import { median } from '../lib/stats';
import { windowSettings } from '../lib/settings';
import type { Suite, SuiteResult } from '../lib/suite';
import { describeRun, measureRun, startBenchCluster, type Measured } from './harness';

/**
 * What a cross-node call costs as the work grows, for a reader projecting the capacity of N
 * nodes on separate machines: CPU µs per call of every node and of Redis, with 2, 3 and 4 nodes,
 * payloads of 64 B, 4 KiB and 256 KiB, and 10 or 10,000 registered functions, on both buses.
 * Each case changes one thing from the first. The caller is on node a, the echo worker on node b,
 * the other nodes idle (what they cost is their heartbeat and their registry mirror).
 */
interface CostCase {
  name: string;
  nodes: number;
  payloadBytes: number;
  /** Records of about 100 bytes besides the pad (bench/invoke/caller.ts). */
  rows?: number;
  functions: number;
}

const CASES: CostCase[] = [
  { name: '2 nodes, 64 B, 10 functions', nodes: 2, payloadBytes: 64, functions: 10 },
  { name: '3 nodes', nodes: 3, payloadBytes: 64, functions: 10 },
  { name: '4 nodes', nodes: 4, payloadBytes: 64, functions: 10 },
  { name: '4 KiB payload', nodes: 2, payloadBytes: 4096, functions: 10 },
  { name: '4 KiB of records', nodes: 2, payloadBytes: 32, rows: 40, functions: 10 },
  { name: '256 KiB payload', nodes: 2, payloadBytes: 256 * 1024, functions: 10 },
  { name: '10,000 functions', nodes: 2, payloadBytes: 64, functions: 10_000 },
];
const BUSES: ClusterBus[] = ['redis', 'direct'];
/** The Redis bus's per-call commands (a PUBLISH each way) stay at this, however many nodes and functions. */
const REDIS_COMMANDS_TARGET = 2.1;

interface CostRun extends Measured {
  case: string;
  bus: ClusterBus;
}

/** BENCH_COST_CASES: the cases whose name contains one of these (comma-separated), all by default. */
function cases(): CostCase[] {
  const wanted = envList('BENCH_COST_CASES', []);
  return wanted.length === 0 ? CASES : CASES.filter((c) => wanted.some((w) => c.name.includes(w)));
}

async function run(log: (line: string) => void): Promise<SuiteResult> {
  const s = windowSettings(1);
  const chosen = cases();
  const inflight = Number(envList('BENCH_COST_INFLIGHT', ['64'])[0]);
  log(
    `cluster-cost: ${s.rounds} rounds x ${chosen.length} cases x [${BUSES.join(', ')}], K = ${inflight}, private redis-server`,
  );
  let server: TestRedis | undefined;
  const runs: CostRun[] = [];
  try {
    server = await startRedis();
    const redis = new Redis(server.url);
    try {
      for (let round = 0; round < s.rounds; round++) {
        for (const c of chosen) {
          for (const bus of BUSES) {
            // The echo worker is one of the registered functions; the filler registers the rest.
            const cluster = await startBenchCluster({
              redisUrl: server.url,
              label: `cost-${bus}`,
              nodes: c.nodes,
              bus,
              workerNode: 1,
              fillerFunctions: c.functions - 1,
              payloadBytes: c.payloadBytes,
              ...(c.rows === undefined ? {} : { rows: c.rows }),
            });
            try {
              const measured = await measureRun(cluster.caller, redis, cluster.processes, inflight, s);
              log(describeRun(`${bus} ${c.name}`.slice(0, 16), measured));
              runs.push({ ...measured, case: c.name, bus });
            } finally {
              await cluster.stop();
            }
          }
        }
      }
    } finally {
      redis.disconnect();
    }
  } finally {
    await server?.stop();
  }

  const pick = (c: string, bus: ClusterBus) => runs.filter((r) => r.case === c && r.bus === bus);
  const med = (rs: CostRun[], f: (r: CostRun) => number) => median(rs.map(f));
  const rows = chosen.flatMap((c) =>
    BUSES.map((bus) => {
      const rs = pick(c.name, bus);
      const node = (i: number) =>
        i < c.nodes ? med(rs, (r) => r.cpuUsPerCall[String.fromCharCode(97 + i)] ?? Number.NaN).toFixed(1) : '–';
      return [
        c.name,
        bus,
        fmtInt(med(rs, (r) => r.callsPerSec)),
        fmtMs(med(rs, (r) => r.p50Ms)),
        node(0),
        node(1),
        node(2),
        node(3),
        med(rs, (r) => r.redisCpuUsPerCall).toFixed(1),
        med(rs, (r) => r.redisPublishesPerCall).toFixed(2),
        med(rs, (r) => r.redisCommandsPerCall).toFixed(2),
      ];
    }),
  );

  const checks: SuiteResult['checks'] = [];
  for (const c of chosen) {
    const commands = med(pick(c.name, 'redis'), (r) => r.redisPublishesPerCall);
    checks.push({
      name: `cost: ${c.name}, Redis bus ≤ ${REDIS_COMMANDS_TARGET} Redis commands (PUBLISH) per call`,
      pass: commands <= REDIS_COMMANDS_TARGET,
    });
  }

  // The projection: a cross-node call costs node a's and node b's CPU once each, and Redis's.
  const base = CASES[0].name;
  const projection = !chosen.includes(CASES[0])
    ? []
    : BUSES.map((bus) => {
        const rs = pick(base, bus);
        const engineUs = med(rs, (r) => (r.cpuUsPerCall['a'] ?? 0) + (r.cpuUsPerCall['b'] ?? 0));
        const redisUs = med(rs, (r) => r.redisCpuUsPerCall);
        return `- **${bus} bus**: ${engineUs.toFixed(1)} µs of engine CPU per cross-node call (caller's node + serving node) → about ${fmtInt(1e6 / engineUs)} calls/s per engine core; Redis ${redisUs.toFixed(1)} µs per call → ${redisUs > 0.5 ? `about ${fmtInt(1e6 / redisUs)} calls/s per Redis core (the ceiling of the whole cluster: Redis runs commands on one core)` : 'Redis is off the call path'}.`;
      });

  const markdown = [
    '### Cluster: cost as the work grows (cluster-cost)',
    '',
    `K=${inflight} closed loops from an iii-sdk caller on node a to the echo worker on node b; the other nodes idle. ` +
      `Median of ${s.rounds} rounds; ${s.warmupMs / 1000} s warm-up + ${s.measureMs / 1000} s window. CPU µs per call: \`process.cpuUsage()\` of each node and \`INFO cpu\` of Redis over warm-up + window, divided by the calls completed. ` +
      'All processes share the 2-core machine, so absolute figures include contention; compare rows with each other.',
    '',
    table(
      [
        'case',
        'bus',
        'calls/s',
        'p50 ms',
        'CPU µs/call a (caller)',
        'b (worker)',
        'c',
        'd',
        'Redis CPU µs/call',
        'PUBLISH/call',
        'all Redis cmds/call (with heartbeats)',
      ],
      rows,
    ),
    '',
    'Projection from the first case (each node on its own machine, CPU-bound):',
    '',
    ...projection,
  ].join('\n');
  return { markdown, checks };
}

export const clusterCostSuite: Suite = { name: 'cluster-cost', title: 'Cluster: cost as the work grows', run };
