/**
 * The contract between `bench/run.ts` and a benchmark suite. A suite lives in its own directory
 * (`bench/<name>/suite.ts`), runs its own child processes, and hands back a markdown section.
 */
export interface SuiteResult {
  /** Markdown (heading included) for stdout and `bench/results/latest.md`. */
  markdown: string;
  /** Target checks, e.g. `{ name: 'K=64 throughput', pass: true }`; MISS never fails the process. */
  checks: { name: string; pass: boolean }[];
}

export interface Suite {
  /** Short id used by `BENCH_SUITES` (comma-separated) to select suites. */
  name: string;
  title: string;
  run(log: (line: string) => void): Promise<SuiteResult>;
}
