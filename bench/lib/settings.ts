import { envList, envNumber } from './env';

/** The measuring window every suite shares, from BENCH_WARMUP_SECONDS, BENCH_SECONDS, BENCH_ROUNDS. */
export interface WindowSettings {
  warmupMs: number;
  measureMs: number;
  rounds: number;
}

/** `minRounds`: the fewest rounds a suite's median makes sense with. */
export function windowSettings(minRounds: number): WindowSettings {
  return {
    warmupMs: envNumber('BENCH_WARMUP_SECONDS', 1, 0) * 1000,
    measureMs: envNumber('BENCH_SECONDS', 4, 0.1) * 1000,
    rounds: Math.floor(envNumber('BENCH_ROUNDS', 3, minRounds)),
  };
}

/** BENCH_INFLIGHT: the K values (calls in flight) to measure, default 1 and 64. */
export function inflightSettings(): number[] {
  return envList('BENCH_INFLIGHT', ['1', '64']).map((k) => {
    const n = Number(k);
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_INFLIGHT: ${k} is not a positive integer`);
    return n;
  });
}
