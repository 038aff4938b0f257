/** IPC messages of the invocation suite (runner <-> children). */

export type ServerKind = 'engine' | 'relay';

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

export interface WorkerReady {
  type: 'ready';
}

export interface CallerReady {
  type: 'ready';
  /** Milliseconds from start until the first successful bench::echo round trip. */
  probeMs: number;
}

export interface RunRequest {
  type: 'run';
  inflight: number;
  warmupMs: number;
  measureMs: number;
}

export interface RunResult {
  type: 'result';
  inflight: number;
  /** Calls completed inside the measuring window. */
  calls: number;
  /** Calls completed from the start of warm-up to the end (what the server's CPU time covers). */
  totalCalls: number;
  /** Failed calls (rejections or wrong echo) inside the measuring window. */
  errors: number;
  measureMs: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Filled in by the runner: server CPU time (user + system) per completed call, in µs. */
  serverCpuUsPerCall?: number;
}

export const ECHO_FUNCTION_ID = 'bench::echo';
/** The 32-byte string every call carries. */
export const PAD = '0123456789abcdef0123456789abcdef';
