import type { QueueJob, QueueSpec } from '../../src/modules/queue/adapters/adapter';
import { BridgeQueueAdapter } from '../../src/modules/queue/adapters/bridge';
import { silentLogger } from '../../src/observability/logger';
import { freePort } from '../support/ports';
import { rejection } from '../support/calls';

/**
 * The queue bridge adapter with no engine at the other end (a free port nobody listens on): what
 * it refuses at once, what fails by its deadline, and its bound on served functions.
 * test/integration/queue-bridge.test.ts runs it against a real engine.
 */

const TIMEOUT_MS = 200;
let adapter: BridgeQueueAdapter;

function spec(overrides: Partial<QueueSpec>): QueueSpec {
  return {
    name: 'q',
    label: 'q',
    ordering: 'standard',
    concurrency: 1,
    maxAttempts: 3,
    backoffMs: 5,
    maxDepth: 10,
    maxBytes: 1000,
    overflow: 'reject',
    maxDeadLetters: 10,
    ...overrides,
  };
}

function job(functionId: string): QueueJob {
  return { id: `job-${functionId}`, functionId, data: { n: 1 }, sizeBytes: 7, enqueuedAtMs: Date.now() };
}

beforeEach(async () => {
  const port = await freePort();
  adapter = new BridgeQueueAdapter({
    url: `ws://127.0.0.1:${port}`,
    nodeId: 'n1',
    logger: silentLogger,
    timeoutMs: TIMEOUT_MS,
    serveFunctions: ['fn::a'],
    maxServedFunctions: 2,
  });
  await adapter.declare(spec({ name: '__fn_queue::jobs', source: { kind: 'named', queue: 'jobs' } }));
  await adapter.declare(spec({ name: 'news::fn::b', source: { kind: 'topic', topic: 'news', functionId: 'fn::b' } }));
});
afterEach(async () => {
  await adapter.close(100);
});

test('an enqueue with the other engine unreachable fails bridge_unavailable by timeout_ms (200 ms here), never acknowledged', async () => {
  const started = Date.now();
  const err = await rejection(adapter.enqueue('__fn_queue::jobs', job('fn::a')));
  expect(err.code).toBe('bridge_unavailable');
  expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
  expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
  expect((await rejection(adapter.publishTopic('news', {}))).code).toBe('bridge_unavailable');
});

test('functions served for named-queue jobs are bounded (2 here, serve_functions included): a third distinct one is refused limit_exceeded at once', async () => {
  expect((await rejection(adapter.enqueue('__fn_queue::jobs', job('fn::second')))).code).toBe('bridge_unavailable');
  const started = Date.now();
  const err = await rejection(adapter.enqueue('__fn_queue::jobs', job('fn::third')));
  expect(err.code).toBe('limit_exceeded');
  expect(err.message).toMatch(/2 distinct functions are served/);
  expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
  // Functions already served keep their way in.
  expect((await rejection(adapter.enqueue('__fn_queue::jobs', job('fn::a')))).code).toBe('bridge_unavailable');
});

test('what the other engine offers no way to do is refused queue_bridge_unsupported; counts fail at once while the link is down', async () => {
  expect((await rejection(adapter.takeAll('__fn_queue::jobs'))).code).toBe('queue_bridge_unsupported');
  expect((await rejection(adapter.counts('news::fn::b'))).code).toBe('queue_bridge_unsupported');
  expect((await rejection(adapter.deadLetters('news::fn::b', 0, 10))).code).toBe('queue_bridge_unsupported');
  expect((await rejection(adapter.enqueue('news::fn::b', job('fn::b')))).code).toBe('queue_bridge_unsupported');
  const started = Date.now();
  expect((await rejection(adapter.counts('__fn_queue::jobs'))).code).toBe('bridge_unavailable');
  expect(Date.now() - started).toBeLessThan(50);
});
