/** IPC messages of the queue suite (runner <-> children). */

/** `sync`: K closed loops of synchronous calls (baseline); `queue`: enqueue, delivered by the queue. */
export type Mode = 'sync' | 'queue';

export interface ServerReady {
  type: 'ready';
  port: number;
}

/** Reply to `{type:'cpu'}`: the server process's CPU time so far (process.cpuUsage, µs). */
export interface ServerCpu {
  type: 'cpu';
  userUs: number;
  systemUs: number;
}

export interface DriverReady {
  type: 'ready';
}

export interface RunRequest {
  type: 'run';
  mode: Mode;
  inflight: number;
  warmupMs: number;
  measureMs: number;
}

export interface RunResult {
  type: 'result';
  mode: Mode;
  inflight: number;
  /** Jobs handled by the worker inside the measuring window. */
  jobs: number;
  /** Jobs handled from the start of warm-up to the end (what the server's CPU time covers). */
  totalJobs: number;
  /** Failed calls or enqueues inside the measuring window. */
  errors: number;
  jobsPerSec: number;
  /** sync: call round trip; queue: from the start of the enqueue call to the handler running. */
  p50Ms: number;
  p99Ms: number;
  /** Filled in by the runner: server CPU time (user + system) per job, in µs. */
  serverCpuUsPerJob?: number;
}

export const JOB_FUNCTION_ID = 'bench::job';
/** The 32-byte string every job carries. */
export const PAD = '0123456789abcdef0123456789abcdef';

/** The named queue whose concurrency is K. */
export function queueName(inflight: number): string {
  return `bench_k${inflight}`;
}
