import fs from 'node:fs';
import path from 'node:path';
import { envFlag, envNumber } from './env';
import { resultsDir } from './paths';

/** Which server kinds run under `node --cpu-prof` (BENCH_PROFILE=1|engine, relay, both). */
export function profileTargets(): Array<'engine' | 'relay'> {
  const raw = (process.env.BENCH_PROFILE ?? '').trim().toLowerCase();
  if (raw === 'both' || raw === 'all') return ['relay', 'engine'];
  if (raw === 'relay') return ['relay'];
  if (raw === 'engine' || envFlag('BENCH_PROFILE')) return ['engine'];
  return [];
}

/**
 * Node flags for a server child: BENCH_SERVER_NODE_ARGS (e.g. "--trace-gc"), plus a CPU profile
 * written to bench/results/profiles/<label>-<time>.cpuprofile when `profiled`.
 */
export function serverExecArgv(profiled: boolean, label: string): string[] {
  const execArgv = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  if (profiled) {
    const dir = path.join(resultsDir, 'profiles');
    fs.mkdirSync(dir, { recursive: true });
    const interval = envNumber('BENCH_PROFILE_INTERVAL_US', 100, 1);
    execArgv.push(
      '--cpu-prof',
      `--cpu-prof-interval=${interval}`,
      `--cpu-prof-dir=${dir}`,
      `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`,
    );
  }
  return execArgv;
}
