import type { IIIClient } from 'iii-sdk';
import { functionRegistered, sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, rejection as failure, type Any } from '../support/calls';

/**
 * iii-queue durable topics (iii-modules.md §6.3): `durable:subscriber` bindings registered by
 * real iii-sdk workers, messages published with `iii::durable::publish`.
 */

const TYPE = 'durable:subscriber';

function publish(w: IIIClient, topic: string, data: unknown): Promise<Any> {
  return call(w, 'iii::durable::publish', { topic, data });
}

/** Registers a subscriber binding and waits until the queue module holds it. */
async function subscribe(
  t: TestEngine,
  w: IIIClient,
  functionId: string,
  config: Record<string, unknown>,
  count = 1,
): Promise<void> {
  w.registerTrigger({ type: TYPE, function_id: functionId, config });
  await waitFor(
    () => t.engine.registry.triggersOfType(TYPE, 'live').filter((b) => b.function_id === functionId).length >= count,
    `${count} binding(s) of ${functionId}`,
  );
}

describe('iii-queue durable topics', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    const modules = testConfig().modules;
    t = await startEngine({
      modules: {
        ...modules,
        queue: {
          enabled: true,
          config: { adapter: { name: 'builtin', config: { backoff_ms: 10, max_topic_backlog: 3 } } },
        },
      },
    });
    w = t.worker('topic-tests');
  });
  afterAll(async () => {
    await t.close();
  });

  test('publish answers null; each subscribed function gets its own copy (fan-out)', async () => {
    const billing: unknown[] = [];
    const mail: unknown[] = [];
    w.registerFunction('t::billing', async (data: unknown) => void billing.push(data));
    w.registerFunction('t::mail', async (data: unknown) => void mail.push(data));
    await subscribe(t, w, 't::billing', { topic: 'order.created' });
    await subscribe(t, w, 't::mail', { queue: 'order.created' }); // `queue` is an alias of `topic`
    for (let i = 0; i < 3; i++) expect(await publish(w, 'order.created', { i })).toBeUndefined();
    await waitFor(() => billing.length === 3 && mail.length === 3, 'three copies each');
    expect(billing).toEqual(expect.arrayContaining([{ i: 0 }, { i: 1 }, { i: 2 }]));
    expect(mail).toEqual(expect.arrayContaining([{ i: 0 }, { i: 1 }, { i: 2 }]));
  });

  test('bindings of one function share its queue (competing consumers): each message is handled once', async () => {
    const a = t.worker('consumer-a');
    const b = t.worker('consumer-b');
    const handled: string[] = [];
    a.registerFunction('t::shared', async (data: { n: number }) => void handled.push(`a${data.n}`));
    b.registerFunction('t::shared', async (data: { n: number }) => void handled.push(`b${data.n}`));
    await functionRegistered(t.engine, 't::shared', 2);
    await subscribe(t, a, 't::shared', { topic: 'jobs' });
    await subscribe(t, b, 't::shared', { topic: 'jobs' }, 2);
    for (let n = 0; n < 10; n++) await publish(w, 'jobs', { n });
    await waitFor(() => handled.length >= 10, 'ten deliveries');
    await sleep(100); // no duplicates arrive late
    expect(handled).toHaveLength(10);
    expect(handled.map((h) => Number(h.slice(1))).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await call(w, 'engine::queue::topic_stats', { topic: 'jobs' })).toEqual({
      depth: 0,
      // ours, for the console: depth split into waiting and delayed, and the jobs in flight.
      waiting: 0,
      delayed: 0,
      in_flight: 0,
      consumer_count: 2,
      dlq_depth: 0,
      config: { 't::shared': { type: 'standard', maxRetries: 2, concurrency: 10, backoffDelayMs: 10 } },
    });
    expect(await call(w, 'engine::queue::list_topics', {})).toContainEqual({
      name: 'jobs',
      broker_type: 'builtin',
      subscriber_count: 2,
    });
  });

  test('a condition returning false skips the message; a failing condition is a failed attempt', async () => {
    const handled: unknown[] = [];
    let conditionCalls = 0;
    w.registerFunction('t::cond', async (data: { keep?: boolean; explode?: boolean }) => {
      conditionCalls++;
      if (data.explode) throw new Error('condition exploded');
      return data.keep === true;
    });
    w.registerFunction('t::filtered', async (data: unknown) => void handled.push(data));
    await functionRegistered(t.engine, 't::cond');
    await subscribe(t, w, 't::filtered', {
      topic: 'filtered',
      condition_function_id: 't::cond',
      queue_config: { maxRetries: 1, backoffDelayMs: 10 },
    });
    await publish(w, 'filtered', { keep: false, n: 1 });
    await publish(w, 'filtered', { keep: true, n: 2 });
    await waitFor(() => handled.length === 1, 'kept message');
    expect(handled).toEqual([{ keep: true, n: 2 }]);

    conditionCalls = 0;
    await publish(w, 'filtered', { explode: true });
    const letters: Any[] = await waitFor(async () => {
      const page: Any[] = await call(w, 'engine::queue::dlq_messages', { topic: 'filtered' });
      return page.length === 1 && page;
    }, 'dead letter');
    // maxRetries 1 = two attempts, each a condition call; the handler never ran.
    expect(conditionCalls).toBe(2);
    expect(letters[0]).toMatchObject({
      payload: { explode: true },
      retries: 2,
      error: expect.stringContaining('condition exploded'),
    });
    expect(handled).toHaveLength(1);
  });

  test('queue_config.maxRetries counts retries after the first attempt; redrive of a topic re-delivers', async () => {
    let attempts = 0;
    let healthy = false;
    w.registerFunction('t::retrying', async () => {
      attempts++;
      if (!healthy) throw new Error('not yet');
    });
    await subscribe(t, w, 't::retrying', { topic: 'retrying', queue_config: { maxRetries: 2, backoffDelayMs: 5 } });
    await publish(w, 'retrying', { x: 1 });
    await waitFor(
      async () => (await call(w, 'engine::queue::dlq_messages', { topic: 'retrying' })).length === 1,
      'dead letter',
    );
    expect(attempts).toBe(3);
    expect(await call(w, 'engine::queue::dlq_topics', {})).toContainEqual({
      topic: 'retrying',
      broker_type: 'builtin',
      message_count: 1,
    });
    healthy = true;
    expect(await call(w, 'iii::queue::redrive', { topic: 'retrying' })).toEqual({ queue: 'retrying', redriven: 1 });
    await waitFor(() => attempts === 4, 'redelivered');
    expect(await call(w, 'engine::queue::dlq_messages', { topic: 'retrying' })).toEqual([]);
  });

  test('FIFO subscribers get messages one at a time, in publish order, even under retry', async () => {
    const seen: number[] = [];
    let failedOnce = false;
    w.registerFunction('t::serial', async (data: { n: number }) => {
      seen.push(data.n);
      if (data.n === 1 && !failedOnce) {
        failedOnce = true;
        throw new Error('first try of 1 fails');
      }
    });
    await subscribe(t, w, 't::serial', {
      topic: 'serial',
      queue_config: { type: 'fifo', maxRetries: 3, backoffDelayMs: 30 },
    });
    for (let n = 0; n < 4; n++) await publish(w, 'serial', { n });
    await waitFor(() => seen.length === 5, 'five deliveries');
    expect(seen).toEqual([0, 1, 1, 2, 3]);
  });

  test('messages published before anyone subscribes are kept (max_topic_backlog, oldest dropped) and go to the first subscriber', async () => {
    for (let n = 1; n <= 5; n++) await publish(w, 'early', { n });
    expect(await call(w, 'engine::queue::topic_stats', { topic: 'early' })).toMatchObject({
      depth: 3,
      consumer_count: 0,
    });
    const got: number[] = [];
    w.registerFunction('t::late', async (data: { n: number }) => void got.push(data.n));
    await subscribe(t, w, 't::late', { topic: 'early' });
    await waitFor(() => got.length === 3, 'backlog delivered');
    expect(got.sort()).toEqual([3, 4, 5]);
  });

  test('a function that unsubscribes keeps its queue; its messages wait for it to subscribe again', async () => {
    const got: number[] = [];
    w.registerFunction('t::returning', async (data: { n: number }) => void got.push(data.n));
    await subscribe(t, w, 't::returning', { topic: 'returning' });
    await publish(w, 'returning', { n: 1 });
    await waitFor(() => got.length === 1, 'first');
    const binding = t.engine.registry.triggersOfType(TYPE, 'live').find((b) => b.function_id === 't::returning')!;
    await t.engine.triggers.unregister(binding.id);
    await publish(w, 'returning', { n: 2 });
    await sleep(50);
    expect(got).toEqual([1]);
    await subscribe(t, w, 't::returning', { topic: 'returning' });
    await waitFor(() => got.length === 2, 'second after resubscribe');
    expect(got).toEqual([1, 2]);
  });

  test('publish without a topic is refused with topic_not_set; the node keeps serving', async () => {
    for (const payload of [{ data: 1 }, { topic: '', data: 1 }]) {
      const err = await failure(call(w, 'iii::durable::publish', payload));
      expect(err.code).toBe('topic_not_set');
    }
    expect(await publish(w, 'still-fine', {})).toBeUndefined();
  });

  test('bad subscriber configs are refused with trigger_registration_failed and a reason', async () => {
    w.registerFunction('t::bad', async () => null);
    await functionRegistered(t.engine, 't::bad');
    const cases: [unknown, string][] = [
      [{}, '`topic` is required'],
      [{ topic: 'x', queue_config: { max_retries: 2 } }, '`max_retries` is not read; write `maxRetries`'],
      [{ topic: 'x', queue_config: { concurrency: 0 } }, '`concurrency` must be an integer >= 1'],
      [{ topic: 'x', queue_config: { maxRetries: 'many' } }, '`maxRetries` must be a number'],
    ];
    for (const [config, reason] of cases) {
      const err = await failure(
        call(w, 'engine::register_trigger', { trigger_type: TYPE, function_id: 't::bad', config }),
      );
      expect(err.code).toBe('trigger_registration_failed');
      expect(err.message).toContain(reason);
    }
    expect(t.engine.registry.triggersOfType(TYPE).filter((b) => b.function_id === 't::bad')).toEqual([]);
    const ok = await call(w, 'engine::register_trigger', {
      trigger_type: TYPE,
      function_id: 't::bad',
      config: { topic: 'fine' },
    });
    expect(ok).toEqual({ id: expect.any(String) });
  });
});

describe('iii-queue max_topics (3 here)', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    const modules = testConfig().modules;
    t = await startEngine({
      modules: {
        ...modules,
        queue: { enabled: true, config: { adapter: { name: 'builtin', config: { max_topics: 3 } } } },
      },
    });
    w = t.worker('max-topics-tests');
  });
  afterAll(async () => {
    await t.close();
  });

  const refusals = async (): Promise<number> =>
    (await t.engine.metrics.limitRefusals.get()).values.find((v) => v.labels.limit === 'iii-queue.max_topics')?.value ??
    0;
  /** The topics the first test managed to create (which 3 of the 5 published at once is not fixed). */
  let created: string[] = [];

  test('a publish that would create a fourth topic is refused with limit_exceeded naming the key and number; known topics keep working', async () => {
    // Published at once: creations in flight together still stop at 3 topics.
    const names = ['one', 'two', 'three', 'four', 'five'];
    const outcomes = await Promise.allSettled(names.map((topic) => publish(w, topic, { topic })));
    created = names.filter((_, i) => outcomes[i].status === 'fulfilled');
    expect(created).toHaveLength(3);
    for (const outcome of outcomes)
      if (outcome.status === 'rejected') expect(outcome.reason.code).toBe('limit_exceeded');
    expect(await refusals()).toBe(2);
    const err = await failure(publish(w, 'six', { lost: false }));
    expect(err.code).toBe('limit_exceeded');
    // (The SDK puts the code in front of the message.)
    expect(err.message).toContain(
      "Cannot publish to topic 'six': this node already holds 3 durable topics (iii-queue.max_topics = 3); use an existing topic or raise adapter.config.max_topics",
    );
    expect(await refusals()).toBe(3);
    // Nothing of the refused topics was kept; the known ones still take messages.
    // (`default` is the named queue that always exists.)
    expect((await call(w, 'engine::queue::list_topics', {})).map((entry: Any) => entry.name).sort()).toEqual(
      ['default', ...created].sort(),
    );
    const known = created[1];
    expect(await publish(w, known, { again: true })).toBeUndefined();
    const got: unknown[] = [];
    w.registerFunction('mt::known', async (data: unknown) => void got.push(data));
    await subscribe(t, w, 'mt::known', { topic: known });
    await waitFor(() => got.length === 2, 'backlog of a known topic delivered');
    expect(got).toEqual(expect.arrayContaining([{ topic: known }, { again: true }]));
  });

  test('a subscription to a new topic beyond max_topics is refused with trigger_registration_failed naming the limit', async () => {
    w.registerFunction('mt::new', async () => null);
    await functionRegistered(t.engine, 'mt::new');
    const before = await refusals();
    const err = await failure(
      call(w, 'engine::register_trigger', { trigger_type: TYPE, function_id: 'mt::new', config: { topic: 'five' } }),
    );
    expect(err.code).toBe('trigger_registration_failed');
    expect(err.message).toContain(
      "Cannot subscribe to topic 'five': this node already holds 3 durable topics (iii-queue.max_topics = 3)",
    );
    expect(await refusals()).toBe(before + 1);
    const ok = await call(w, 'engine::register_trigger', {
      trigger_type: TYPE,
      function_id: 'mt::new',
      config: { topic: created[0] },
    });
    expect(ok).toEqual({ id: expect.any(String) });
  });
});
