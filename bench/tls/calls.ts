/**
 * What TLS costs on the worker listener: calls/s of iii-sdk calls through one engine over ws://
 * and over wss://, with K calls in flight (K = 1: one sequential loop; K = 64), the two modes
 * alternating so machine noise hits both. Not part of `npm run bench` (a one-off figure for the
 * docs); run it with
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/tls/calls.js
 *
 * BENCH_TLS_MEASURE_MS (default 3000) and BENCH_TLS_ROUNDS (default 2) tune it. The engine runs
 * in this process with logging off; the echo worker and the caller are the invoke suite's
 * children, started with NODE_EXTRA_CA_CERTS (the SDK uses Node's default CA store) in both modes.
 */
import path from 'node:path';
import { ephemeralConfig } from '../../src/config/ephemeral';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { readTlsMaterial } from '../../src/config/tls-files';
import { makeCertificates } from '../../test/support/tls';
import { BenchChild, killAllChildren } from '../lib/child';
import { distBench } from '../lib/paths';
import type { CallerReady, RunRequest, RunResult, WorkerReady } from '../invoke/protocol';

const INFLIGHT = [1, 64];
/** Warm-up before each measuring window, in milliseconds (connections, JIT). */
const WARMUP_MS = 500;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

async function measure(tls: boolean, certs: ReturnType<typeof makeCertificates>, measureMs: number): Promise<number[]> {
  const config = ephemeralConfig({ nodeId: 'bench-tls' });
  if (tls) {
    const material = readTlsMaterial(
      { certFile: certs.certFile, keyFile: certs.keyFile, minVersion: 'TLSv1.2' },
      { cert: 'bench cert', key: 'bench key' },
    );
    config.listeners = config.listeners.map((l) => ({ ...l, tls: material }));
  }
  const engine = createEngine(config, { logger: silentLogger });
  await engine.start();
  const url = `${tls ? 'wss' : 'ws'}://127.0.0.1:${engine.port}`;
  const env = { NODE_EXTRA_CA_CERTS: certs.caFile };
  const children: { stop(): Promise<void> }[] = [];
  try {
    const worker = BenchChild.fork<WorkerReady>(path.join(distBench, 'invoke', 'echo-worker.js'), {
      name: 'echo worker',
      args: [url],
      env,
    });
    children.push(worker);
    await worker.next<WorkerReady>('ready', 15_000);
    const caller = BenchChild.fork<CallerReady | RunResult>(path.join(distBench, 'invoke', 'caller.js'), {
      name: 'caller',
      args: [url],
      env,
    });
    children.push(caller);
    await caller.next<CallerReady>('ready', 30_000);
    const rates: number[] = [];
    for (const inflight of INFLIGHT) {
      caller.send({ type: 'run', inflight, warmupMs: WARMUP_MS, measureMs } satisfies RunRequest);
      const result = await caller.next<RunResult>('result', WARMUP_MS + measureMs + 60_000);
      if (result.errors > 0) throw new Error(`${result.errors} calls failed (${tls ? 'wss' : 'ws'}, K=${inflight})`);
      rates.push(result.callsPerSec);
    }
    return rates;
  } finally {
    for (const child of children.reverse()) await child.stop();
    await engine.stop();
  }
}

async function main(): Promise<void> {
  const measureMs = positiveInt('BENCH_TLS_MEASURE_MS', 3000);
  const rounds = positiveInt('BENCH_TLS_ROUNDS', 2);
  const certs = makeCertificates();
  const runs: Record<'ws' | 'wss', number[][]> = { ws: [], wss: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['ws', 'wss'] as const) {
        const rates = await measure(mode === 'wss', certs, measureMs);
        runs[mode].push(rates);
        process.stderr.write(
          `round ${round + 1} ${mode.padEnd(3)} ${INFLIGHT.map((k, i) => `K=${k}: ${Math.round(rates[i])} calls/s`).join('  ')}\n`,
        );
      }
    }
  } finally {
    certs.remove();
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  process.stdout.write(`| K | ws calls/s | wss calls/s | wss / ws |\n|---|---|---|---|\n`);
  INFLIGHT.forEach((k, i) => {
    const ws = median(runs.ws.map((r) => r[i]));
    const wss = median(runs.wss.map((r) => r[i]));
    process.stdout.write(`| ${k} | ${Math.round(ws)} | ${Math.round(wss)} | ${(wss / ws).toFixed(2)} |\n`);
  });
}

main().catch((err: unknown) => {
  killAllChildren();
  console.error(err);
  process.exit(1);
});
