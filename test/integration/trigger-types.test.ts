import type { IIIClient } from 'iii-sdk';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';

interface Binding {
  id: string;
  function_id: string;
  config: unknown;
}

/** A worker providing trigger type `webhook`, recording what the engine tells it. */
function provide(worker: IIIClient, fail = false) {
  const active = new Map<string, Binding>();
  const removed: string[] = [];
  worker.registerTriggerType(
    { id: 'webhook', description: 'Fires on webhooks' },
    {
      async registerTrigger(b: Binding) {
        if (fail) throw new Error('config rejected');
        active.set(b.id, b);
      },
      async unregisterTrigger(b: Binding) {
        removed.push(b.id);
        active.delete(b.id);
      },
    },
  );
  return { active, removed };
}

describe('worker-provided trigger types', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  test('a binding reaches the provider, which fires it with ordinary calls', async () => {
    const provider = t.worker('provider');
    const { active } = provide(provider);
    const consumer = t.worker('consumer');
    const got: unknown[] = [];
    consumer.registerFunction('hooks::on', async (data: unknown) => void got.push(data));
    consumer.registerTrigger({
      type: 'webhook',
      function_id: 'hooks::on',
      config: { path: '/a' },
      metadata: { src: 'crm' },
    });
    const binding = await waitFor(() => [...active.values()][0], 'the provider to receive the binding');
    expect(binding).toMatchObject({ function_id: 'hooks::on', config: { path: '/a' } });
    await provider.trigger({ function_id: binding.function_id, payload: { fired: true } });
    expect(got[0]).toMatchObject({ fired: true });
  });

  test('a binding registered before its type is parked, then delivered when the type appears', async () => {
    const consumer = t.worker('consumer');
    const errors: unknown[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args) => void errors.push(args));
    consumer.registerFunction('hooks::early', async () => null);
    consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::early', config: { early: true } });
    await waitFor(
      () => [...t.engine.registry.triggers()].find((b) => b.function_id === 'hooks::early')?.state === 'parked',
      'a parked binding',
    );
    const { active } = provide(t.worker('provider'));
    await waitFor(() => active.size === 1, 'the parked binding to be delivered');
    expect([...t.engine.registry.triggers()].find((b) => b.function_id === 'hooks::early')?.state).toBe('live');
    spy.mockRestore();
    expect(errors).toEqual([]);
  });

  test('when the provider leaves, bindings are parked and re-delivered to the next provider', async () => {
    const first = t.worker('provider-1');
    const firstSide = provide(first);
    const consumer = t.worker('consumer');
    consumer.registerFunction('hooks::kept', async () => null);
    consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::kept', config: {} });
    await waitFor(() => firstSide.active.size === 1, 'delivery to the first provider');
    await first.shutdown();
    await waitFor(() => [...t.engine.registry.triggers()][0]?.state === 'parked', 'the binding to be parked');
    expect(t.engine.registry.triggerType('webhook')).toBeUndefined();
    const secondSide = provide(t.worker('provider-2'));
    await waitFor(() => secondSide.active.size === 1, 'delivery to the second provider');
  });

  test('when the owner leaves, its bindings are unregistered at the provider', async () => {
    const { active, removed } = provide(t.worker('provider'));
    const consumer = t.worker('consumer');
    consumer.registerFunction('hooks::gone', async () => null);
    consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::gone', config: {} });
    const binding = await waitFor(() => [...active.values()][0], 'delivery');
    await consumer.shutdown();
    await waitFor(() => removed.includes(binding.id), 'unregistertrigger at the provider');
    expect([...t.engine.registry.triggers()]).toHaveLength(0);
  });

  test('unregistering a binding tells the provider', async () => {
    const { active, removed } = provide(t.worker('provider'));
    const consumer = t.worker('consumer');
    const trigger = consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::x', config: {} });
    const binding = await waitFor(() => [...active.values()][0], 'delivery');
    trigger.unregister();
    await waitFor(() => removed.includes(binding.id), 'unregistertrigger at the provider');
  });

  test('a provider refusing a binding parks it and the owner is told through triggerregistrationresult', async () => {
    provide(t.worker('provider'), true);
    await waitFor(() => t.engine.registry.triggerType('webhook'), 'the type');
    const errors: string[] = [];
    const spy = jest
      .spyOn(console, 'error')
      .mockImplementation((...args) => void errors.push(args.map(String).join(' ')));
    const consumer = t.worker('consumer');
    consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::refused', config: {} });
    await waitFor(() => errors.some((e) => e.includes('config rejected')), 'the SDK to log the refusal');
    spy.mockRestore();
    expect([...t.engine.registry.triggers()][0]?.state).toBe('parked');
  });

  test('unregistertriggertype removes the type and parks its bindings', async () => {
    const provider = t.worker('provider');
    const { active } = provide(provider);
    const consumer = t.worker('consumer');
    consumer.registerTrigger({ type: 'webhook', function_id: 'hooks::y', config: {} });
    await waitFor(() => active.size === 1, 'delivery');
    provider.unregisterTriggerType({ id: 'webhook', description: 'Fires on webhooks' });
    await waitFor(() => !t.engine.registry.triggerType('webhook'), 'the type to go');
    expect([...t.engine.registry.triggers()][0]?.state).toBe('parked');
  });

  test('a binding to an in-process type is refused with trigger_registration_failed when the module rejects it', async () => {
    await t.engine.registerTriggerType(
      'test-module',
      { id: 'picky', description: 'refuses everything' },
      {
        registerTrigger() {
          throw new Error('picky says no');
        },
        unregisterTrigger() {},
      },
    );
    const errors: string[] = [];
    const spy = jest
      .spyOn(console, 'error')
      .mockImplementation((...args) => void errors.push(args.map(String).join(' ')));
    const consumer = t.worker('consumer');
    consumer.registerTrigger({ type: 'picky', function_id: 'f::g', config: {} });
    await waitFor(() => errors.some((e) => e.includes('picky says no')), 'the SDK to log the refusal');
    spy.mockRestore();
    await sleep(50);
    expect([...t.engine.registry.triggers()]).toHaveLength(0);
    await functionRegistered(t.engine, 'engine::functions::list');
  });
});
