import type { IIIClient } from 'iii-sdk';
import { PubSubModule } from '../../src/modules/pubsub';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';
import { failure } from '../support/calls';

/** `publish` and the `subscribe` trigger type (iii-modules.md §10), with real iii-sdk workers. */

interface Delivery {
  data: unknown;
  metadata: unknown;
}

/** A function recording what it receives, subscribed to `topic`; resolves once the binding is live. */
async function subscriber(
  t: TestEngine,
  worker: IIIClient,
  functionId: string,
  topic: string,
  extra: Record<string, unknown> = {},
) {
  const received: Delivery[] = [];
  if (!t.engine.registry.pool(functionId).length) {
    worker.registerFunction(
      functionId,
      async (data: unknown, metadata?: unknown) => void received.push({ data, metadata }),
    );
    await functionRegistered(t.engine, functionId);
  }
  const before = liveBindings(t, functionId);
  const trigger = worker.registerTrigger({
    type: 'subscribe',
    function_id: functionId,
    config: { topic, ...extra },
    metadata: { note: 'not delivered' },
  });
  await waitFor(() => liveBindings(t, functionId) > before, `a live subscription of ${functionId}`);
  return { received, trigger };
}

function liveBindings(t: TestEngine, functionId: string): number {
  return t.engine.registry.triggersOfType('subscribe', 'live').filter((b) => b.function_id === functionId).length;
}

function publish(worker: IIIClient, payload: unknown): Promise<unknown> {
  return worker.trigger({ function_id: 'publish', payload });
}

describe('pubsub', () => {
  let t: TestEngine;
  let worker: IIIClient;
  let other: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    worker = t.worker('pubsub-a');
    other = t.worker('pubsub-b');
    await functionRegistered(t.engine, 'publish');
  });
  afterAll(async () => {
    await t.close();
  });

  test('publish returns null and every subscriber of the topic gets the data itself, without envelope or metadata', async () => {
    const a = await subscriber(t, worker, 'ps::both-a', 'orders');
    const b = await subscriber(t, other, 'ps::both-b', 'orders');
    expect(await publish(worker, { topic: 'orders', data: { id: 7, items: ['x'] } })).toBeUndefined();
    await waitFor(() => a.received.length === 1 && b.received.length === 1, 'both subscribers');
    expect(a.received[0]).toEqual({ data: { id: 7, items: ['x'] }, metadata: undefined });
    expect(b.received[0]).toEqual({ data: { id: 7, items: ['x'] }, metadata: undefined });
    a.trigger.unregister();
    b.trigger.unregister();
  });

  test('any JSON value, including null, is delivered as published', async () => {
    const s = await subscriber(t, worker, 'ps::values', 'values');
    for (const data of [null, 3, 'text', [1, 2]]) await publish(worker, { topic: 'values', data });
    await waitFor(() => s.received.length === 4, 'four deliveries');
    expect(s.received.map((r) => r.data).sort()).toEqual([null, 3, 'text', [1, 2]].sort());
    s.trigger.unregister();
  });

  test('topics are isolated', async () => {
    const a = await subscriber(t, worker, 'ps::topic-a', 'topic-a');
    const b = await subscriber(t, worker, 'ps::topic-b', 'topic-b');
    await publish(worker, { topic: 'topic-a', data: 'for a' });
    await waitFor(() => a.received.length === 1, 'delivery on topic-a');
    await sleep(150);
    expect(b.received).toHaveLength(0);
    a.trigger.unregister();
    b.trigger.unregister();
  });

  test('unsubscribing one subscriber leaves the others on the topic', async () => {
    const leaving = await subscriber(t, worker, 'ps::leaving', 'shared');
    const staying = await subscriber(t, other, 'ps::staying', 'shared');
    leaving.trigger.unregister();
    await waitFor(() => liveBindings(t, 'ps::leaving') === 0, 'the unsubscription');
    await publish(worker, { topic: 'shared', data: 1 });
    await waitFor(() => staying.received.length === 1, 'the remaining subscriber');
    await sleep(150);
    expect(leaving.received).toHaveLength(0);
    staying.trigger.unregister();
  });

  // Until binding groups, each of the two got a delivery: two replicas of a worker (a pool)
  // make such bindings, and must not get each message twice (docs/PROTOCOL.md).
  test('two bindings of one function with the same config are one binding group: one delivery', async () => {
    const first = await subscriber(t, worker, 'ps::twice', 'twice');
    const second = await subscriber(t, worker, 'ps::twice', 'twice');
    await publish(worker, { topic: 'twice', data: 'x' });
    await waitFor(() => first.received.length === 1, 'one delivery');
    await sleep(200);
    expect(first.received.map((r) => r.data)).toEqual(['x']);
    first.trigger.unregister();
    await waitFor(() => liveBindings(t, 'ps::twice') === 1, 'one binding left');
    await publish(worker, { topic: 'twice', data: 'y' });
    await waitFor(() => first.received.length === 2, 'the remaining binding delivers');
    second.trigger.unregister();
  });

  test('two bindings of one function with fan_out: true each get a delivery', async () => {
    const first = await subscriber(t, worker, 'ps::fan-out', 'fan-out', { fan_out: true });
    const second = await subscriber(t, worker, 'ps::fan-out', 'fan-out', { fan_out: true });
    await publish(worker, { topic: 'fan-out', data: 'x' });
    await waitFor(() => first.received.length === 2, 'two deliveries');
    await sleep(200);
    expect(first.received.map((r) => r.data)).toEqual(['x', 'x']);
    first.trigger.unregister();
    second.trigger.unregister();
  });

  test('condition_function_id: a false result skips the delivery; the condition sees the data', async () => {
    const seen: unknown[] = [];
    worker.registerFunction('ps::important-only', async (data: { important?: boolean }) => {
      seen.push(data);
      return data.important === true;
    });
    await functionRegistered(t.engine, 'ps::important-only');
    const s = await subscriber(t, worker, 'ps::filtered', 'alerts', { condition_function_id: 'ps::important-only' });
    await publish(worker, { topic: 'alerts', data: { important: false, n: 1 } });
    await publish(worker, { topic: 'alerts', data: { important: true, n: 2 } });
    await waitFor(() => seen.length === 2 && s.received.length === 1, 'both conditions and one delivery');
    await sleep(100);
    expect(s.received.map((r) => r.data)).toEqual([{ important: true, n: 2 }]);
    expect(seen).toContainEqual({ important: false, n: 1 });
    s.trigger.unregister();
  });

  test('publish does not wait for subscribers, and a failing subscriber does not affect the others', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    worker.registerFunction('ps::blocked', async () => {
      entered = true;
      await gate;
    });
    worker.registerFunction('ps::failing', async () => {
      throw new Error('subscriber failed');
    });
    await functionRegistered(t.engine, 'ps::failing');
    const blocked = worker.registerTrigger({
      type: 'subscribe',
      function_id: 'ps::blocked',
      config: { topic: 'slow' },
    });
    const failing = worker.registerTrigger({
      type: 'subscribe',
      function_id: 'ps::failing',
      config: { topic: 'slow' },
    });
    const fine = await subscriber(t, other, 'ps::fine', 'slow');
    await waitFor(() => liveBindings(t, 'ps::blocked') === 1 && liveBindings(t, 'ps::failing') === 1, 'subscriptions');
    expect(await publish(worker, { topic: 'slow', data: 'go' })).toBeUndefined();
    await waitFor(() => entered && fine.received.length === 1, 'deliveries while one subscriber is still busy');
    release();
    blocked.unregister();
    failing.unregister();
    fine.trigger.unregister();
  });

  test('publishing to a topic nobody listens to succeeds', async () => {
    expect(await publish(worker, { topic: 'nobody-here', data: { x: 1 } })).toBeUndefined();
  });

  describe('bad input', () => {
    test('an empty topic: topic_not_set', async () => {
      const err = await failure(worker, 'publish', { topic: '', data: 1 });
      expect(err.code).toBe('topic_not_set');
      expect(err.message).toContain('publish needs a non-empty `topic`');
    });

    test.each([
      [{ data: 1 }, 'missing field `topic`'],
      [{ topic: 5, data: 1 }, 'field `topic` must be a string'],
      [{ topic: 'x' }, 'missing field `data`'],
      ['just a string', 'expected an object'],
    ])('publish %j: deserialization_error', async (payload, reason) => {
      const err = await failure(worker, 'publish', payload);
      expect(err.code).toBe('deserialization_error');
      expect(err.message).toContain(`Failed to deserialize input for publish: ${reason}`);
    });

    test.each([
      [{ topic: '' }, 'Subscribe trigger needs a non-empty `topic` in its config'],
      [{}, 'Subscribe trigger needs a non-empty `topic` in its config'],
      [null, 'Subscribe trigger needs a non-empty `topic` in its config'],
      [{ topic: ['a'] }, 'field `topic` must be a string'],
      [{ topic: 'a', condition_function_id: 1 }, 'field `condition_function_id` must be a string'],
    ])('subscribe config %j is refused: trigger_registration_failed', async (config, reason) => {
      const err = await failure(worker, 'engine::register_trigger', {
        trigger_type: 'subscribe',
        function_id: 'ps::nobody',
        config,
      });
      expect(err.code).toBe('trigger_registration_failed');
      expect(err.message).toContain(reason);
    });

    test('a worker subscribing with an empty topic is told, nothing is stored, and the node keeps serving', async () => {
      const logged: string[] = [];
      const spy = jest
        .spyOn(console, 'error')
        .mockImplementation((...args) => void logged.push(args.map(String).join(' ')));
      try {
        worker.registerTrigger({ type: 'subscribe', function_id: 'ps::empty-topic', config: { topic: '' } });
        await waitFor(
          () => logged.some((l) => l.includes('Subscribe trigger needs a non-empty `topic`')),
          'the SDK to log the refusal',
        );
      } finally {
        spy.mockRestore();
      }
      expect([...t.engine.registry.triggers()].some((b) => b.function_id === 'ps::empty-topic')).toBe(false);
      const s = await subscriber(t, worker, 'ps::after-errors', 'still-serving');
      await publish(worker, { topic: 'still-serving', data: 'ok' });
      await waitFor(() => s.received.length === 1, 'a delivery after the bad input');
      s.trigger.unregister();
    });
  });

  test('an adapter this build does not implement makes start() fail, listing the supported ones', async () => {
    await expect(new PubSubModule({ adapter: { name: 'nats', config: null } }).start(t.engine)).rejects.toThrow(
      "iii-pubsub: adapter 'nats' is not supported by this build; supported adapters: local, redis",
    );
  });
});
