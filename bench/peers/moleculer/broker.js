'use strict';
/**
 * Bench child: one Moleculer broker with the Redis transporter.
 *   node broker.js echo   <redisUrl> <namespace>   serves `echo.echo` (returns its params)
 *   node broker.js caller <redisUrl> <namespace>   calls it with K closed loops on {type:'run'}
 * Speaks the runner's IPC protocol (bench/lib/child.ts): ready, run -> result, stop.
 */
const { performance } = require('node:perf_hooks');
const { ServiceBroker } = require('moleculer');

const [role, redisUrl, namespace] = process.argv.slice(2);
const PAD = 'x'.repeat(32);

const broker = new ServiceBroker({
  nodeID: `${role}-${process.pid}`,
  namespace,
  transporter: redisUrl,
  logger: false,
  // Plain request/response, as the engine's calls: no retries, no circuit breaker.
  requestTimeout: 30000,
});

if (role === 'echo') broker.createService({ name: 'echo', actions: { echo: (ctx) => ctx.params } });

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function run({ inflight, warmupMs, measureMs }) {
  const measureStart = performance.now() + warmupMs;
  const measureEnd = measureStart + measureMs;
  const samples = [];
  let errors = 0;
  let next = 0;
  let totalCalls = 0;
  const lane = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= measureEnd) return;
      const n = next++;
      let ok;
      try {
        const out = await broker.call('echo.echo', { n, pad: PAD });
        ok = out && out.n === n && out.pad === PAD;
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      totalCalls++;
      if (t1 >= measureStart && t1 < measureEnd) {
        if (ok) samples.push(t1 - t0);
        else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  samples.sort((a, b) => a - b);
  return {
    type: 'result',
    inflight,
    calls: samples.length,
    totalCalls,
    errors,
    measureMs,
    callsPerSec: samples.length / (measureMs / 1000),
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
  };
}

async function main() {
  await broker.start();
  if (role === 'caller') await broker.waitForServices(['echo'], 30000);
  process.on('message', async (message) => {
    if (message.type === 'stop') {
      await broker.stop().catch(() => undefined);
      process.exit(0);
    }
    if (message.type === 'run') process.send(await run(message));
    if (message.type === 'cpu') {
      const usage = process.cpuUsage();
      process.send({ type: 'cpu', userUs: usage.user, systemUs: usage.system });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
