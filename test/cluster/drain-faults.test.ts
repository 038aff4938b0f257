import { randomUUID } from 'node:crypto';
import { registerWorker, type IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import { functionRegistered, sleep, startEngine, waitFor } from '../support/engine';
import { startNodeProcess, type NodeProcess } from '../support/node-process';
import { startRedis, type TestRedis } from '../support/redis';
import { call, rejection, type Any } from '../support/calls';

/**
 * One SIGTERM ends a node in bounded time whatever Redis and the workers are doing, and the
 * calls a stopping node cannot finish or hand over are failed with a clear error and counted.
 */

/** The drain grace the node runs with, in ms, and what `iii-cluster` allows past it (STOP_SLACK_MS). */
const GRACE_MS = 2000;
const SLACK_MS = 5000;

let redis: TestRedis | undefined;
let node: NodeProcess | undefined;
const clients: IIIClient[] = [];
const raws: WebSocket[] = [];

afterEach(async () => {
  for (const ws of raws.splice(0)) ws.terminate();
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => undefined)));
  await node?.kill('SIGKILL');
  node = undefined;
  redis?.resume();
  await redis?.stop();
  redis = undefined;
});

function client(url: string, name: string): IIIClient {
  const c = registerWorker(url, {
    workerName: name,
    enableMetricsReporting: false,
    otel: { enabled: false },
    reconnectionConfig: { maxRetries: 0 },
  });
  clients.push(c);
  return c;
}

test(`a node whose Redis hangs (SIGSTOP) while a call never finishes exits within drain_grace_ms + 5 s of one SIGTERM; the call is answered engine_shutting_down`, async () => {
  redis = await startRedis();
  node = await startNodeProcess({
    nodeId: 'drain-faults',
    redisUrl: redis.url,
    keyPrefix: `t${randomUUID().slice(0, 8)}:`,
    env: { III_DRAIN_GRACE_MS: String(GRACE_MS) },
  });
  const worker = client(node.url, 'stuck-worker');
  worker.registerFunction('stuck::never', () => new Promise(() => undefined));
  const caller = client(node.url, 'caller');
  await waitFor(
    async () =>
      ((await call(caller, 'engine::functions::list', {})).functions as Any[]).some(
        (f) => f.function_id === 'stuck::never',
      ),
    'the stuck function',
  );
  const pending = rejection(caller.trigger({ function_id: 'stuck::never', payload: {}, timeoutMs: 60_000 }));
  await sleep(200);

  // Without the stop deadline of `iii-cluster` (STOP_SLACK_MS) this node waits on the paused Redis for minutes.
  redis.pause();
  const started = Date.now();
  const exited = node.kill('SIGTERM').then(() => true);
  const inTime = await Promise.race([exited, sleep(GRACE_MS + SLACK_MS + 3000).then(() => false)]);
  const elapsed = Date.now() - started;
  expect({ inTime, elapsed: elapsed <= GRACE_MS + SLACK_MS + 1500 }).toEqual({ inTime: true, elapsed: true });
  const err = await pending;
  expect(String(err.code ?? err.message)).toMatch(/engine_shutting_down|shutting down/);
}, 30_000);

test(`a node whose Redis and whose worker are stopped at the same moment exits within drain_grace_ms + 5 s of one SIGTERM; the call is answered engine_shutting_down`, async () => {
  redis = await startRedis();
  node = await startNodeProcess({
    nodeId: 'drain-stopped',
    redisUrl: redis.url,
    keyPrefix: `t${randomUUID().slice(0, 8)}:`,
    env: { III_DRAIN_GRACE_MS: String(GRACE_MS) },
  });
  // A raw worker that stops reading its socket: the invocation, and later the close frame, go unread.
  const ws = new WebSocket(node.url);
  raws.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'registerfunction', id: 'stopped::echo' }));
  const caller = client(node.url, 'caller');
  await waitFor(
    async () =>
      ((await call(caller, 'engine::functions::list', {})).functions as Any[]).some(
        (f) => f.function_id === 'stopped::echo',
      ),
    'the stopped worker',
  );
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  redis.pause();
  const pending = rejection(caller.trigger({ function_id: 'stopped::echo', payload: {}, timeoutMs: 60_000 }));
  await sleep(200);

  const started = Date.now();
  const exited = node.kill('SIGTERM').then(() => true);
  const inTime = await Promise.race([exited, sleep(GRACE_MS + SLACK_MS + 3000).then(() => false)]);
  const elapsed = Date.now() - started;
  expect({ inTime, elapsed: elapsed <= GRACE_MS + SLACK_MS + 1500 }).toEqual({ inTime: true, elapsed: true });
  const err = await pending;
  expect(String(err.code ?? err.message)).toMatch(/engine_shutting_down|shutting down/);
}, 30_000);

test('calls still pending when the grace ends are failed engine_shutting_down and counted in iii_drain_failed_calls_total', async () => {
  const t = await startEngine({ drainGraceMs: 300 });
  const worker = t.worker('stuck-worker');
  worker.registerFunction('stuck::never', () => new Promise(() => undefined));
  await functionRegistered(t.engine, 'stuck::never');
  const caller = t.worker('caller');
  const pending = rejection(call(caller, 'stuck::never', {}));
  await waitFor(() => t.engine.router.pending.size === 1, 'the pending call');
  const stopping = t.engine.stop();
  const err = await pending;
  expect(err.code).toBe('engine_shutting_down');
  await stopping;
  const metric = (await t.engine.metrics.drainFailedCalls.get()).values.find(
    (v) => v.labels['reason'] === 'grace_expired',
  );
  expect(metric?.value).toBe(1);
  await Promise.all([worker.shutdown(), caller.shutdown()].map((p) => p.catch(() => undefined)));
});
