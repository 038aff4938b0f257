import fc from 'fast-check';

/**
 * Run counts of the fuzz suites. Each suite states its base count in its test name; the
 * environment variable FUZZ_RUNS_SCALE multiplies every count (`FUZZ_RUNS_SCALE=10` for a long
 * run, `0.1` for a quick one), and FUZZ_SEED replays one seed (fast-check prints the seed and
 * the shrunk counterexample of a failure).
 */
export function scaledRuns(base: number): number {
  const raw = process.env['FUZZ_RUNS_SCALE'];
  const scale = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(`FUZZ_RUNS_SCALE must be a positive number, got ${JSON.stringify(raw)}`);
  return Math.max(1, Math.round(base * scale));
}

/**
 * Time limit of one fuzz test, in ms. The run counts are fixed, not the time: on a busy shared
 * machine a suite may take several times its idle duration, and must not fail for that.
 */
export const FUZZ_TEST_TIMEOUT_MS = 180_000;

/** fast-check parameters for `numRuns` runs, with FUZZ_SEED applied when set. */
export function fuzzParams<T>(numRuns: number): fc.Parameters<T> {
  const seed = process.env['FUZZ_SEED'];
  return seed === undefined || seed === '' ? { numRuns } : { numRuns, seed: Number(seed) };
}
