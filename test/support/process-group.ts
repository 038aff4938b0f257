import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A stop waits this long for SIGTERM before it SIGKILLs the process group, in ms. */
const STOP_DEADLINE_MS = 5000;

const everyProcess = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Spawns `bin` as the leader of its own process group (detached), killed as one: by `stopGroup`,
 * or with SIGKILL if the test process exits without its teardown, so no server is left behind.
 */
export function spawnGroup(bin: string, args: string[], options: SpawnOptions = { stdio: 'ignore' }): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const proc of everyProcess) killGroup(proc, 'SIGKILL');
    });
  }
  const proc = spawn(bin, args, { ...options, detached: true });
  everyProcess.add(proc);
  proc.once('exit', () => everyProcess.delete(proc));
  return proc;
}

export function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGCONT (a paused server must see the SIGTERM), SIGTERM, then SIGKILL of the group after a deadline. */
export async function stopGroup(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  killGroup(proc, 'SIGCONT');
  killGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}
