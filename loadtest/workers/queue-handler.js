/**
 * The queue handler worker of the load tests: `lt::queue::job` on every node counts each job
 * once per run (by its id; deliveries are at-least-once) and keeps its wait (enqueue to
 * handling, ms); `lt::queue::stats {run}` answers `{handled, redelivered, waitP95Ms}`.
 */
const { announceReady, connectAll, waitCallable } = require('./common');

/** run -> {ids, waits (ms), redelivered} */
const runs = new Map();

function runOf(name) {
  let run = runs.get(name);
  if (!run) runs.set(name, (run = { ids: new Set(), waits: [], redelivered: 0 }));
  return run;
}

function p95(values) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))];
}

async function main() {
  const clients = connectAll('lt-queue-handler');
  for (const client of clients) {
    client.registerFunction('lt::queue::job', async (job) => {
      const run = runOf(job.run);
      if (run.ids.has(job.id)) run.redelivered++;
      else {
        run.ids.add(job.id);
        run.waits.push(Date.now() - job.sentAt);
      }
      return null;
    });
    client.registerFunction('lt::queue::stats', async ({ run: name }) => {
      const run = runOf(name);
      return { handled: run.ids.size, redelivered: run.redelivered, waitP95Ms: p95(run.waits) };
    });
  }
  await waitCallable(clients, 'lt::queue::stats', { run: 'probe' });
  await waitCallable(clients, 'lt::queue::job', { run: 'probe', id: 'probe', sentAt: Date.now() });
  announceReady(clients);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
