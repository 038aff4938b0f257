/**
 * What the load-test workers share: one iii-sdk client per engine node (III_WS_URLS), so every
 * node has a local member of each pool; a readiness probe; a clean exit on SIGTERM.
 */
const { registerWorker } = require('iii-sdk');

console.debug = () => undefined; // the SDK's per-connection chatter

/** One client per node URL in III_WS_URLS. */
function connectAll(workerName) {
  const urls = (process.env.III_WS_URLS || '').split(',').filter((url) => url !== '');
  if (urls.length === 0) throw new Error('III_WS_URLS is not set (comma-separated worker URLs, one per node)');
  return urls.map((url) =>
    registerWorker(url, { workerName, enableMetricsReporting: false, otel: { enabled: false } }),
  );
}

/** Resolves once `functionId` answers through every client, i.e. every node sees the pool. */
async function waitCallable(clients, functionId, payload) {
  const deadline = Date.now() + 15000;
  for (const client of clients) {
    for (;;) {
      try {
        await client.trigger({ function_id: functionId, payload, timeoutMs: 2000 });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${functionId} not callable within 15 s: ${err.message}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

/** Prints `ready` for the runner, and shuts the clients down on SIGTERM / SIGINT. */
function announceReady(clients) {
  process.stdout.write('ready\n');
  const stop = async () => {
    await Promise.all(clients.map((client) => client.shutdown().catch(() => undefined)));
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

module.exports = { announceReady, connectAll, waitCallable };
