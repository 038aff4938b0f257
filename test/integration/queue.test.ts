import { TriggerAction, type IIIClient } from 'iii-sdk';
import { createEngine } from '../../src/create-engine';
import { QueueModule } from '../../src/modules/queue';
import { MAX_DLQ_PAGE } from '../../src/modules/queue/dlq-functions';
import { silentLogger } from '../../src/observability/logger';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, rejection as failure, type Any } from '../support/calls';

/**
 * iii-queue named queues (iii-modules.md §6.2, §6.4): real iii-sdk workers enqueue with
 * `TriggerAction.Enqueue` and serve the functions the queue delivers to.
 */

function queueEngine(config: Record<string, unknown>): Promise<TestEngine> {
  const modules = testConfig().modules;
  return startEngine({ modules: { ...modules, queue: { enabled: true, config } } });
}

function enqueue(w: IIIClient, queue: string, functionId: string, payload: unknown): Promise<Any> {
  return w.trigger({ function_id: functionId, payload, action: TriggerAction.Enqueue({ queue }) });
}

/** A promise opened from outside. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function scrape(t: TestEngine): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.engine.metricsPort}/metrics`);
  return res.text();
}

function gaugeValue(text: string, metric: string, queue: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`queue="${queue}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('iii-queue named queues', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await queueEngine({
      queue_configs: {
        retry3: { max_retries: 3, backoff_ms: 20 },
        backoff: { max_retries: 4, backoff_ms: 50 },
        orders: { type: 'fifo', message_group_field: 'customer', max_retries: 5, backoff_ms: 300, concurrency: 4 },
        pair: { concurrency: 2 },
        dead: { max_retries: 1, backoff_ms: 10 },
        gauge: { max_retries: 1, concurrency: 1 },
        bulk: { max_retries: 1, concurrency: 50 },
      },
    });
    w = t.worker('queue-tests');
  });
  afterAll(async () => {
    await t.close();
  });

  test('enqueue answers {messageReceiptId} and delivers data, untouched, as the payload', async () => {
    const got: unknown[] = [];
    w.registerFunction('q::echo', async (data: unknown) => void got.push(data));
    await functionRegistered(t.engine, 'q::echo');
    const receipt = await enqueue(w, 'default', 'q::echo', { n: 1, nested: { ok: true } });
    expect(receipt).toEqual({ messageReceiptId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    await waitFor(() => got.length === 1, 'delivery');
    expect(got).toEqual([{ n: 1, nested: { ok: true } }]);
  });

  test('max_retries counts every attempt: exactly 3, then the DLQ entry has the documented shape', async () => {
    const attempts: number[] = [];
    w.registerFunction('q::always-fails', async () => {
      attempts.push(Date.now());
      throw new Error('always fails');
    });
    await functionRegistered(t.engine, 'q::always-fails');
    const data = { order: 7, note: 'x' };
    const { messageReceiptId } = await enqueue(w, 'retry3', 'q::always-fails', data);
    const letters: Any[] = await waitFor(async () => {
      const page: Any[] = await call(w, 'engine::queue::dlq_messages', { topic: 'retry3' });
      return page.length === 1 && page;
    }, 'dead letter');
    expect(attempts).toHaveLength(3);
    // No fourth attempt comes later (the next backoff would have been 80 ms).
    await sleep(200);
    expect(attempts).toHaveLength(3);
    const nowSeconds = Date.now() / 1000;
    expect(letters[0]).toEqual({
      id: messageReceiptId,
      payload: data,
      error: expect.stringContaining('always fails'),
      failed_at: expect.any(Number),
      retries: 3,
      size_bytes: Buffer.byteLength(JSON.stringify(data)),
    });
    expect(Number.isInteger(letters[0].failed_at)).toBe(true);
    expect(Math.abs(letters[0].failed_at - nowSeconds)).toBeLessThan(30);
  });

  test('backoff grows exponentially between attempts (backoff_ms 50: ~50, ~100, ~200 ms)', async () => {
    const times: number[] = [];
    w.registerFunction('q::flaky', async () => {
      times.push(performance.now());
      throw new Error('flaky');
    });
    await functionRegistered(t.engine, 'q::flaky');
    await enqueue(w, 'backoff', 'q::flaky', {});
    await waitFor(() => times.length === 4, 'four attempts');
    const gaps = times.slice(1).map((time, i) => time - times[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThan(gaps[0]);
    expect(gaps[2]).toBeGreaterThan(gaps[1]);
  });

  test('FIFO: order holds per group even under retry, and other groups keep flowing', async () => {
    const seen: string[] = [];
    let failed = false;
    w.registerFunction('q::order', async (data: { customer: string; seq: number }) => {
      const tag = `${data.customer}${data.seq}`;
      seen.push(tag);
      if (tag === 'a1' && !failed) {
        failed = true;
        throw new Error('a1 fails once');
      }
    });
    await functionRegistered(t.engine, 'q::order');
    for (const [customer, seq] of [
      ['a', 1],
      ['a', 2],
      ['b', 1],
      ['a', 3],
      ['b', 2],
    ] as const) {
      await enqueue(w, 'orders', 'q::order', { customer, seq });
    }
    await waitFor(() => seen.length === 6, 'six deliveries');
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a1', 'a1', 'a2', 'a3']);
    expect(seen.filter((s) => s.startsWith('b'))).toEqual(['b1', 'b2']);
    // Group b was not held up by a1's 300 ms backoff.
    expect(seen.indexOf('b2')).toBeLessThan(seen.lastIndexOf('a1'));
  });

  test('FIFO: a message without its group field (missing or null) is refused with enqueue_error; the node keeps serving', async () => {
    const missing = await failure(enqueue(w, 'orders', 'q::order-x', { seq: 1 }));
    expect(missing.code).toBe('enqueue_error');
    expect(missing.message).toContain("Queue 'orders' is FIFO: data.customer");
    const nulled = await failure(enqueue(w, 'orders', 'q::order-x', { customer: null }));
    expect(nulled.message).toContain('must not be null');
    expect(await enqueue(w, 'orders', 'q::order-x', { customer: 'c' })).toEqual({
      messageReceiptId: expect.any(String),
    });
  });

  test('an unknown queue is refused with enqueue_error "Queue \'<name>\' not found"', async () => {
    const err = await failure(enqueue(w, 'nope', 'q::echo', {}));
    expect(err.code).toBe('enqueue_error');
    expect(err.message).toContain("Queue 'nope' not found");
    expect(err.message).toContain('default');
  });

  test('concurrency bounds deliveries in flight per queue', async () => {
    let inFlight = 0;
    let peak = 0;
    let done = 0;
    w.registerFunction('q::slow', async () => {
      peak = Math.max(peak, ++inFlight);
      await sleep(60);
      inFlight--;
      done++;
    });
    await functionRegistered(t.engine, 'q::slow');
    for (let i = 0; i < 6; i++) await enqueue(w, 'pair', 'q::slow', { i });
    await waitFor(() => done === 6, 'six done');
    expect(peak).toBe(2);
  });

  test('redrive_message, discard_message and redrive re-deliver or delete dead letters', async () => {
    let broken = true;
    const delivered: string[] = [];
    w.registerFunction('q::repairable', async (data: { name: string }) => {
      if (broken) throw new Error('downstream is down');
      delivered.push(data.name);
    });
    await functionRegistered(t.engine, 'q::repairable');
    const ids: string[] = [];
    for (const name of ['one', 'two', 'three'])
      ids.push((await enqueue(w, 'dead', 'q::repairable', { name })).messageReceiptId);
    await waitFor(
      async () => (await call(w, 'engine::queue::dlq_messages', { topic: 'dead' })).length === 3,
      'three dead letters',
    );
    expect(await call(w, 'engine::queue::dlq_topics', {})).toContainEqual({
      topic: 'dead',
      broker_type: 'function_queue',
      message_count: 3,
    });
    broken = false;

    expect(await call(w, 'iii::queue::redrive_message', { queue: 'dead', message_id: ids[0] })).toEqual({
      queue: 'dead',
      message_id: ids[0],
      redriven: 1,
    });
    await waitFor(() => delivered.includes('one'), 'one redriven');
    expect(await call(w, 'iii::queue::discard_message', { queue: 'dead', message_id: ids[1] })).toEqual({
      queue: 'dead',
      message_id: ids[1],
      redriven: 1,
    });
    expect(await call(w, 'iii::queue::discard_message', { queue: 'dead', message_id: ids[1] })).toEqual({
      queue: 'dead',
      message_id: ids[1],
      redriven: 0,
    });
    expect(await call(w, 'iii::queue::redrive', { queue: 'dead' })).toEqual({ queue: 'dead', redriven: 1 });
    await waitFor(() => delivered.includes('three'), 'three redriven');
    expect(delivered.sort()).toEqual(['one', 'three']);
    expect(await call(w, 'engine::queue::dlq_messages', { topic: 'dead' })).toEqual([]);
  });

  test('dlq_messages pages with offset and limit, oldest first', async () => {
    w.registerFunction('q::pager', async () => {
      throw new Error('nope');
    });
    await functionRegistered(t.engine, 'q::pager');
    await call(w, 'iii::queue::redrive', { queue: 'dead' }); // leaves nothing behind from other tests
    for (let i = 0; i < 5; i++) await enqueue(w, 'dead', 'q::pager', { i });
    await waitFor(
      async () => (await call(w, 'engine::queue::dlq_messages', { topic: 'dead' })).length === 5,
      'five dead letters',
    );
    const page: Any[] = await call(w, 'engine::queue::dlq_messages', { topic: 'dead', offset: 1, limit: 2 });
    expect(page).toHaveLength(2);
    const all: Any[] = await call(w, 'engine::queue::dlq_messages', { topic: 'dead', limit: 100 });
    expect(page.map((m) => m.id)).toEqual(all.slice(1, 3).map((m) => m.id));
  });

  test(`dlq_messages returns at most MAX_DLQ_PAGE (${MAX_DLQ_PAGE}) entries, whatever the limit`, async () => {
    w.registerFunction('q::bulk-fails', async () => {
      throw new Error('bulk');
    });
    await functionRegistered(t.engine, 'q::bulk-fails');
    const total = MAX_DLQ_PAGE + 1;
    for (let i = 0; i < total; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, total - i) }, (_, j) => enqueue(w, 'bulk', 'q::bulk-fails', { n: i + j })),
      );
    }
    await waitFor(
      async () => (await call(w, 'engine::queue::topic_stats', { topic: 'bulk' })).dlq_depth === total,
      'all dead',
      15_000,
    );
    expect(await call(w, 'engine::queue::dlq_messages', { topic: 'bulk', limit: 5000 })).toHaveLength(MAX_DLQ_PAGE);
    expect(
      await call(w, 'engine::queue::dlq_messages', { topic: 'bulk', offset: MAX_DLQ_PAGE, limit: 5000 }),
    ).toHaveLength(1);
  });

  test('list_topics and topic_stats describe named queues', async () => {
    const topics: Any[] = await call(w, 'engine::queue::list_topics', {});
    expect(topics).toContainEqual({ name: 'default', broker_type: 'function_queue', subscriber_count: 10 });
    expect(topics).toContainEqual({ name: 'pair', broker_type: 'function_queue', subscriber_count: 2 });
    const stats = await call(w, 'engine::queue::topic_stats', { topic: 'retry3' });
    expect(stats).toEqual({
      depth: 0,
      // ours, for the console: depth split into waiting and delayed, and the jobs in flight.
      waiting: 0,
      delayed: 0,
      in_flight: 0,
      consumer_count: 10,
      dlq_depth: 1,
      config: expect.objectContaining({ max_retries: 3, backoff_ms: 20, type: 'standard', concurrency: 10 }),
    });
  });

  test('bad input to the inspection functions gets its code and message; the node keeps serving', async () => {
    const cases: [string, unknown, string, string][] = [
      ['iii::queue::redrive', {}, 'queue_not_set', '`queue`'],
      ['iii::queue::redrive_message', { queue: 'dead' }, 'message_id_not_set', '`message_id`'],
      ['iii::queue::discard_message', { queue: 'dead', message_id: '' }, 'message_id_not_set', '`message_id`'],
      ['engine::queue::topic_stats', {}, 'topic_required', '`topic`'],
      [
        'engine::queue::topic_stats',
        { topic: 'no-such-topic' },
        'queue_not_found',
        "No queue or topic named 'no-such-topic'",
      ],
      ['iii::queue::redrive', { queue: 'no-such-queue' }, 'queue_not_found', 'known: default'],
      [
        'engine::queue::dlq_messages',
        { topic: 'dead', offset: -1 },
        'deserialization_error',
        '`offset` must be an integer >= 0',
      ],
      [
        'engine::queue::dlq_messages',
        { topic: 'dead', limit: 'ten' },
        'deserialization_error',
        '`limit` must be a number',
      ],
    ];
    for (const [fn, payload, code, text] of cases) {
      const err = await failure(call(w, fn, payload));
      expect({ fn, code: err.code }).toEqual({ fn, code });
      expect(err.message).toContain(text);
    }
    expect(await call(w, 'engine::queue::topic_stats', { topic: 'default' })).toMatchObject({ depth: 0 });
  });

  test('iii_queue_depth and iii_queue_dlq_size are exported per queue', async () => {
    const held = gate();
    w.registerFunction('q::gauged', async (data: { fail?: boolean }) => {
      if (data.fail) throw new Error('dead on arrival');
      await held.promise;
    });
    await functionRegistered(t.engine, 'q::gauged');
    await enqueue(w, 'gauge', 'q::gauged', { fail: true });
    await waitFor(async () => gaugeValue(await scrape(t), 'iii_queue_dlq_size', 'gauge') === 1, 'dlq gauge 1');
    for (let i = 0; i < 3; i++) await enqueue(w, 'gauge', 'q::gauged', { i });
    // Concurrency 1: one in flight, two waiting.
    await waitFor(async () => gaugeValue(await scrape(t), 'iii_queue_depth', 'gauge') === 2, 'depth gauge 2');
    held.open();
    await waitFor(async () => gaugeValue(await scrape(t), 'iii_queue_depth', 'gauge') === 0, 'depth gauge 0');
  });
});

describe('iii-queue limits', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await queueEngine({
      adapter: { name: 'builtin', config: { max_depth: 3, max_message_bytes: 1024, max_queue_bytes: 2000 } },
    });
    w = t.worker('queue-limits');
  });
  afterAll(async () => {
    await t.close();
  });

  test('max_depth: a queue holding its limit refuses with "is full" until it drains', async () => {
    const held = gate();
    let done = 0;
    w.registerFunction('q::blocked', async () => {
      await held.promise;
      done++;
    });
    await functionRegistered(t.engine, 'q::blocked');
    for (let i = 0; i < 3; i++) await enqueue(w, 'default', 'q::blocked', { i });
    const err = await failure(enqueue(w, 'default', 'q::blocked', { i: 3 }));
    expect(err.code).toBe('enqueue_error');
    expect(err.message).toContain("Queue 'default' is full: it holds 3 messages (max_depth)");
    held.open();
    await waitFor(() => done === 3, 'drained');
    expect(await enqueue(w, 'default', 'q::blocked', { i: 4 })).toEqual({ messageReceiptId: expect.any(String) });
  });

  test('max_queue_bytes: a queue keeping its byte budget refuses with "is full" until it drains', async () => {
    const held = gate();
    let done = 0;
    w.registerFunction('q::bytes', async () => {
      await held.promise;
      done++;
    });
    await functionRegistered(t.engine, 'q::bytes');
    const data = { pad: 'y'.repeat(900) };
    await enqueue(w, 'default', 'q::bytes', data);
    await enqueue(w, 'default', 'q::bytes', data);
    const err = await failure(enqueue(w, 'default', 'q::bytes', data));
    expect(err.code).toBe('enqueue_error');
    expect(err.message).toContain('of its 2000 bytes (max_queue_bytes');
    held.open();
    await waitFor(() => done === 2, 'drained');
    expect(await enqueue(w, 'default', 'q::bytes', data)).toEqual({ messageReceiptId: expect.any(String) });
  });

  test('max_depth applies to each subscriber queue of a topic: publish is refused with queue_full', async () => {
    const held = gate();
    let done = 0;
    w.registerFunction('q::subscriber', async () => {
      await held.promise;
      done++;
    });
    w.registerTrigger({ type: 'durable:subscriber', function_id: 'q::subscriber', config: { topic: 'crowded' } });
    await waitFor(() => t.engine.registry.triggersOfType('durable:subscriber', 'live').length === 1, 'binding');
    for (let i = 0; i < 3; i++) await call(w, 'iii::durable::publish', { topic: 'crowded', data: { i } });
    const err = await failure(call(w, 'iii::durable::publish', { topic: 'crowded', data: { i: 3 } }));
    expect(err.code).toBe('queue_full');
    expect(err.message).toContain("Topic 'crowded': Queue 'topic crowded -> q::subscriber' is full");
    held.open();
    await waitFor(() => done === 3, 'drained');
  });

  test('max_message_bytes: larger data is refused on enqueue and publish', async () => {
    const big = { pad: 'x'.repeat(2000) };
    const err = await failure(enqueue(w, 'default', 'q::anything', big));
    expect(err.code).toBe('enqueue_error');
    expect(err.message).toContain('the queue accepts at most 1024 bytes');
    const published = await failure(call(w, 'iii::durable::publish', { topic: 'big', data: big }));
    expect(published.code).toBe('invalid_queue_message');
    expect(await enqueue(w, 'default', 'q::anything', { small: true })).toEqual({
      messageReceiptId: expect.any(String),
    });
  });
});

describe('iii-queue adapter selection', () => {
  test.each([
    [
      { adapter: { name: 'kafka' } },
      "adapter 'kafka' is not supported yet; supported adapters: builtin, redis, bullmq, rabbitmq, bridge",
    ],
    [{ adapter: { name: 'bridge', config: { timeout_ms: 0 } } }, 'adapter.config.timeout_ms must be an integer >= 1'],
    [
      { adapter: { name: 'builtin', config: { store_method: 'on_tape' } } },
      'store_method must be "in_memory" or "file_based", got "on_tape"',
    ],
    [
      { adapter: { name: 'builtin', config: { max_attempts: 0 } } },
      'adapter.config.max_attempts must be an integer >= 1',
    ],
  ])('start() refuses %j', async (config, message) => {
    const host = createEngine(testConfig(), { logger: silentLogger });
    try {
      await expect(new QueueModule(config).start(host)).rejects.toThrow(message);
    } finally {
      host.channels.close();
    }
  });
});
