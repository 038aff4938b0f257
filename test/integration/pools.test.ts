import { functionRegistered, sleep, startEngine, type TestEngine } from '../support/engine';

describe('worker pools: several workers serving one function id', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  test('calls are spread over the pool by least in-flight', async () => {
    const counts: Record<string, number> = { w1: 0, w2: 0, w3: 0 };
    for (const name of Object.keys(counts)) {
      t.worker(name).registerFunction('pool::work', async () => {
        counts[name]++;
        await sleep(20);
        return name;
      });
    }
    await functionRegistered(t.engine, 'pool::work', 3);
    const caller = t.worker('caller');
    const results = await Promise.all(
      Array.from({ length: 30 }, () => caller.trigger({ function_id: 'pool::work', payload: {} })),
    );
    expect(results).toHaveLength(30);
    // With 30 concurrent calls and least in-flight balancing, each member takes exactly a third.
    expect(counts).toEqual({ w1: 10, w2: 10, w3: 10 });
  });

  test('a busy member is passed over while another is idle', async () => {
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
    t.worker('slow').registerFunction('pool::mixed', async () => {
      await slowGate;
      return 'slow';
    });
    await functionRegistered(t.engine, 'pool::mixed');
    const caller = t.worker('caller');
    // The only member takes the first call and holds it...
    const first = caller.trigger({ function_id: 'pool::mixed', payload: {} });
    await sleep(50);
    t.worker('fast').registerFunction('pool::mixed', async () => 'fast');
    await functionRegistered(t.engine, 'pool::mixed', 2);
    // ...so while it is busy, every later call goes to the idle member.
    for (let i = 0; i < 4; i++)
      await expect(caller.trigger({ function_id: 'pool::mixed', payload: {} })).resolves.toBe('fast');
    releaseSlow();
    await expect(first).resolves.toBe('slow');
  });

  test('a member that leaves removes only itself; the pool keeps serving', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    a.registerFunction('pool::failover', async () => 'a');
    b.registerFunction('pool::failover', async () => 'b');
    await functionRegistered(t.engine, 'pool::failover', 2);
    await a.shutdown();
    await sleep(100);
    expect(t.engine.registry.pool('pool::failover')).toHaveLength(1);
    const caller = t.worker('caller');
    for (let i = 0; i < 5; i++)
      await expect(caller.trigger({ function_id: 'pool::failover', payload: {} })).resolves.toBe('b');
  });

  test('unregistering from one member leaves the others registered', async () => {
    const a = t.worker('a');
    const b = t.worker('b');
    const ref = a.registerFunction('pool::unreg', async () => 'a');
    b.registerFunction('pool::unreg', async () => 'b');
    await functionRegistered(t.engine, 'pool::unreg', 2);
    ref.unregister();
    await sleep(100);
    const caller = t.worker('caller');
    await expect(caller.trigger({ function_id: 'pool::unreg', payload: {} })).resolves.toBe('b');
  });
});
