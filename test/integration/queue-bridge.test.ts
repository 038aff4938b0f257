import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TriggerAction, type IIIClient } from 'iii-sdk';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { OtherEngine } from '../support/other-engine';
import { call, failure, rejection, type Any } from '../support/calls';

/**
 * The `bridge` adapter of iii-queue: this engine (in-process) keeps its queues in a second
 * iii-cluster engine running as its own process. Enqueues made here land there; that engine's
 * retries, backoff and dead-letter queue apply to the deliveries it makes to consumers here.
 */

/** The other engine's queues: its policy is the one that applies (3 attempts, 50 ms backoff). */
const REMOTE_CONFIG = `
workers:
  - name: iii-queue
    config:
      queue_configs:
        jobs: { max_retries: 3, backoff_ms: 50 }
`;

/** How long a call to the other engine may take here, in ms (the down test's deadline). */
const BRIDGE_TIMEOUT_MS = 1000;

let dir: string;
const local: TestEngine[] = [];

let other: OtherEngine;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iii-queue-bridge-'));
  await writeFile(join(dir, 'config.yaml'), REMOTE_CONFIG);
  other = new OtherEngine({ cwd: dir, args: ['--config', 'config.yaml'] });
});
beforeEach(async () => {
  await other.pickPort();
});
afterEach(async () => {
  await other.stopWorkers();
  await Promise.all(local.splice(0).map((t) => t.close()));
  await other.kill();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A local engine whose iii-queue is bridged; its own `jobs` policy (1 attempt) must not apply. */
async function bridged(extra: Record<string, unknown> = {}): Promise<TestEngine> {
  const base = testConfig();
  const queue = {
    enabled: true,
    config: {
      queue_configs: { jobs: { max_retries: 1, backoff_ms: 5000 }, only_here: {} },
      adapter: { name: 'bridge', config: { bridge_url: other.url, timeout_ms: BRIDGE_TIMEOUT_MS, ...extra } },
    },
  };
  const t = await startEngine({ modules: { ...base.modules, queue } });
  local.push(t);
  return t;
}

function enqueue(w: IIIClient, queue: string, functionId: string, payload: unknown): Promise<Any> {
  return w.trigger({ function_id: functionId, payload, action: TriggerAction.Enqueue({ queue }) });
}

/** Waits until the remote engine's topic has `count` subscriptions (ours arrive over the bridge). */
async function remoteSubscribers(worker: IIIClient, topic: string, count: number): Promise<void> {
  await waitFor(
    async () => {
      const stats = await call(worker, 'engine::queue::topic_stats', { topic }).catch(() => undefined);
      return stats?.consumer_count === count;
    },
    `${count} subscriber(s) of ${topic} on the remote engine`,
    10_000,
  );
}

test('a job enqueued here lands in the other engine and is delivered from there to a consumer here', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const t = await bridged();
  const lw = t.worker('local-app');
  const got: Any[] = [];
  lw.registerFunction('local::work', async (data: Any) => void got.push(data));
  await functionRegistered(t.engine, 'local::work');

  const receipt = await enqueue(lw, 'jobs', 'local::work', { n: 1, nested: { ok: true } });
  expect(receipt).toEqual({ messageReceiptId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  await waitFor(() => got.length === 1, 'the delivery from the other engine', 10_000);
  expect(got).toEqual([{ n: 1, nested: { ok: true } }]);
  // The job went through the other engine: this engine serves local::work there for its queue.
  await other.has(rw, 'local::work');
  // A queue only this engine lists is refused by the other one, and the refusal reaches the producer.
  const refused = await rejection(enqueue(lw, 'only_here', 'local::work', { n: 2 }));
  expect(refused.code).toBe('enqueue_error');
  expect(refused.message).toMatch(/Queue 'only_here' not found/);
  await sleep(200);
  expect(got).toHaveLength(1);
}, 30_000);

test('jobs enqueued and published on the other engine are consumed here: named queue (serve_functions) and durable:subscriber', async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const remoteNews: Any[] = [];
  rw.registerFunction('remote::news', async (data: Any) => void remoteNews.push(data));
  await other.has(rw, 'remote::news');
  rw.registerTrigger({ type: 'durable:subscriber', function_id: 'remote::news', config: { topic: 'news' } });

  const t = await bridged({ serve_functions: ['local::served'] });
  const lw = t.worker('local-app');
  const served: Any[] = [];
  const news: Any[] = [];
  lw.registerFunction('local::served', async (data: Any) => void served.push(data));
  lw.registerFunction('local::news', async (data: Any) => void news.push(data));
  await functionRegistered(t.engine, 'local::news');
  const binding = lw.registerTrigger({
    type: 'durable:subscriber',
    function_id: 'local::news',
    config: { topic: 'news', queue_config: { maxRetries: 1, backoffDelayMs: 10 } },
  });

  // Named queue: a worker there enqueues for a function that lives here.
  await other.has(rw, 'local::served');
  expect(await enqueue(rw, 'jobs', 'local::served', { from: 'remote' })).toEqual({
    messageReceiptId: expect.any(String),
  });
  await waitFor(() => served.length === 1, 'the remote job delivered here', 10_000);
  expect(served).toEqual([{ from: 'remote' }]);

  // Durable topic: a publish there reaches the subscriber here, and one here reaches both, once each.
  await remoteSubscribers(rw, 'news', 2);
  // The local binding's queue_config is the policy of its subscription there.
  const { config } = await call(rw, 'engine::queue::topic_stats', { topic: 'news' });
  expect(config['iii-bridge::queue::test-node::news::local::news']).toMatchObject({
    maxRetries: 1,
    backoffDelayMs: 10,
  });
  await call(rw, 'iii::durable::publish', { topic: 'news', data: { n: 1 } });
  await call(lw, 'iii::durable::publish', { topic: 'news', data: { n: 2 } });
  await waitFor(() => news.length === 2 && remoteNews.length === 2, 'both publishes at both subscribers', 10_000);
  await sleep(300);
  expect(news.map((d) => d.n).sort()).toEqual([1, 2]);
  expect(remoteNews.map((d) => d.n).sort()).toEqual([1, 2]);

  // A newer local binding of the same function sets the policy there (one subscription, bound again).
  const newer = lw.registerTrigger({
    type: 'durable:subscriber',
    function_id: 'local::news',
    config: { topic: 'news', queue_config: { maxRetries: 4 } },
  });
  const policyThere = async () =>
    (await call(rw, 'engine::queue::topic_stats', { topic: 'news' })).config[
      'iii-bridge::queue::test-node::news::local::news'
    ];
  await waitFor(async () => (await policyThere())?.maxRetries === 4, 'the newer policy there');
  newer.unregister();
  await waitFor(async () => (await policyThere())?.maxRetries === 1, 'the older policy back there');
  expect((await call(rw, 'engine::queue::topic_stats', { topic: 'news' })).consumer_count).toBe(2);

  // The last local binding going away removes its subscription there; the remote one keeps receiving.
  binding.unregister();
  await remoteSubscribers(rw, 'news', 1);
  await call(lw, 'iii::durable::publish', { topic: 'news', data: { n: 3 } });
  await waitFor(() => remoteNews.length === 3, 'the third publish there', 10_000);
  await sleep(200);
  expect(news).toHaveLength(2);
}, 30_000);

test("a failing consumer here gets the other engine's retries; the job lands in its DLQ, which this engine's DLQ functions show and redrive", async () => {
  await other.start();
  const rw = other.worker('remote-app');
  const t = await bridged();
  const lw = t.worker('local-app');
  const attempts: number[] = [];
  let healthy = false;
  lw.registerFunction('local::flaky', async () => {
    attempts.push(Date.now());
    if (!healthy) throw new Error('not today');
    return null;
  });
  await functionRegistered(t.engine, 'local::flaky');

  const data = { order: 7 };
  const { messageReceiptId } = await enqueue(lw, 'jobs', 'local::flaky', data);
  const letters: Any[] = await waitFor(
    async () => {
      const page: Any[] = await call(rw, 'engine::queue::dlq_messages', { topic: 'jobs' });
      return page.length === 1 && page;
    },
    'the dead letter on the other engine',
    10_000,
  );
  // The other engine's policy: 3 attempts (this engine's `jobs` says 1), 50 ms backoff (not 5 s).
  expect(attempts).toHaveLength(3);
  expect(letters[0]).toMatchObject({
    id: messageReceiptId,
    payload: data,
    error: expect.stringContaining('not today'),
    retries: 3,
  });

  // This engine's DLQ functions answer from the other engine's DLQ.
  expect(await call(lw, 'engine::queue::dlq_messages', { topic: 'jobs' })).toEqual(letters);
  expect(await call(lw, 'engine::queue::topic_stats', { topic: 'jobs' })).toMatchObject({ dlq_depth: 1 });
  expect(await call(lw, 'engine::queue::dlq_topics', {})).toEqual(
    expect.arrayContaining([expect.objectContaining({ topic: 'jobs', message_count: 1 })]),
  );

  healthy = true;
  expect(await call(lw, 'iii::queue::redrive', { queue: 'jobs' })).toEqual({ queue: 'jobs', redriven: 1 });
  await waitFor(() => attempts.length === 4, 'the redriven job delivered again', 10_000);
  await waitFor(
    async () => (await call(rw, 'engine::queue::dlq_messages', { topic: 'jobs' })).length === 0,
    'an empty DLQ there',
  );
  expect((await failure(lw, 'iii::queue::redrive', {})).code).toBe('queue_not_set');
}, 30_000);

test('an enqueue while the other engine is down fails with bridge_unavailable by its deadline; after it returns, enqueues are delivered again', async () => {
  await other.start();
  const t = await bridged();
  const lw = t.worker('local-app');
  const got: Any[] = [];
  lw.registerFunction('local::work', async (data: Any) => void got.push(data));
  await functionRegistered(t.engine, 'local::work');
  await enqueue(lw, 'jobs', 'local::work', { n: 1 });
  await waitFor(() => got.length === 1, 'the first delivery', 10_000);

  await other.kill();
  let started = Date.now();
  const direct = await failure(lw, 'engine::queue::enqueue', {
    queue: 'jobs',
    function_id: 'local::work',
    data: { n: 2 },
  });
  expect(direct.code).toBe('bridge_unavailable');
  expect(Date.now() - started).toBeLessThan(BRIDGE_TIMEOUT_MS + 2000);
  started = Date.now();
  // The enqueue action reports every provider failure as enqueue_error (as iii's core does), with the cause.
  const action = await rejection(enqueue(lw, 'jobs', 'local::work', { n: 3 }));
  expect(action.code).toBe('enqueue_error');
  expect(action.message).toMatch(/the bridge to ws:\/\/127\.0\.0\.1:\d+ is not connected/);
  expect(Date.now() - started).toBeLessThan(BRIDGE_TIMEOUT_MS + 2000);
  const publish = await failure(lw, 'iii::durable::publish', { topic: 'news', data: {} });
  expect(publish.code).toBe('bridge_unavailable');

  await other.start();
  // Reconnection backoff is at most a few seconds here: retry the enqueue until the link is back.
  await waitFor(
    () =>
      enqueue(lw, 'jobs', 'local::work', { n: 4 }).then(
        () => true,
        () => false,
      ),
    'an accepted enqueue after the restart',
    20_000,
  );
  await waitFor(() => got.some((d) => d.n === 4), 'the delivery after the restart', 10_000);
  expect(got.map((d) => d.n).filter((n) => n !== 4)).toEqual([1]);
}, 60_000);
