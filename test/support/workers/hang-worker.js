// A worker in its own process, so a test can kill -9 it in the middle of a call.
const { registerWorker } = require('iii-sdk');

console.debug = () => undefined;
const worker = registerWorker(process.argv[2], {
  workerName: 'hang-worker',
  enableMetricsReporting: false,
  otel: { enabled: false },
});
worker.registerFunction('hang::forever', () => {
  process.stdout.write('CALLED\n');
  return new Promise(() => undefined);
});
process.stdout.write('READY\n');
