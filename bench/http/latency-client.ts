import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Samples, percentileSorted } from '../lib/stats';

export interface LatencyResult {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * One request at a time over one keep-alive connection for `durationMs`, each timed with
 * `performance.now()`: a latency figure free of queueing (autocannon's histogram is too coarse
 * for sub-millisecond loopback requests).
 */
export async function measureLatency(url: string, durationMs: number): Promise<LatencyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples = new Samples();
  let errors = 0;
  const end = performance.now() + durationMs;
  try {
    while (performance.now() < end) {
      const t0 = performance.now();
      const status = await get(url, agent);
      if (status === 200) samples.push(performance.now() - t0);
      else errors++;
    }
  } finally {
    agent.destroy();
  }
  const sorted = samples.sorted();
  return { requests: samples.length, errors, p50Ms: percentileSorted(sorted, 50), p99Ms: percentileSorted(sorted, 99) };
}

function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
  });
}
