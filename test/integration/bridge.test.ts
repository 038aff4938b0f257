import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { OtherEngine } from '../support/other-engine';
import { call, failure, rejection, type Any } from '../support/calls';

/**
 * `iii-bridge` between two engines: this one (in-process) joins a second iii-cluster engine
 * running as its own process, as an ordinary worker over the iii protocol.
 */

const other = new OtherEngine();
const local: TestEngine[] = [];

function bridged(block: Record<string, unknown>): Promise<TestEngine> {
  const base = testConfig();
  return startEngine({
    modules: { ...base.modules, bridge: { enabled: true, config: { url: other.url, ...block } } },
  }).then((t) => {
    local.push(t);
    return t;
  });
}

beforeEach(async () => {
  await other.pickPort();
});
afterEach(async () => {
  await other.stopWorkers();
  await Promise.all(local.splice(0).map((t) => t.close()));
  await other.kill();
});

test('bridge.invoke and forwarded functions call the remote engine; exposed functions serve it; invoke_async fires', async () => {
  await other.start();
  const fired: Any[] = [];
  const rw = other.worker('remote-app');
  rw.registerFunction('remote::echo', async (data: Any) => ({ echoed: data }));
  rw.registerFunction('remote::nothing', async () => undefined);
  rw.registerFunction('remote::fail', async () => {
    throw new Error('remote says no');
  });
  rw.registerFunction('remote::record', async (data: Any) => void fired.push(data));
  await other.has(rw, 'remote::record');

  const t = await bridged({
    forward: [{ local_function: 'local::echo', remote_function: 'remote::echo', timeout_ms: 5000 }],
    expose: [{ local_function: 'local::greet', remote_function: 'bridged::greet' }],
  });
  const lw = t.worker('local-app');
  lw.registerFunction('local::greet', async (data: Any) => `hello ${data.name}`);
  await functionRegistered(t.engine, 'local::greet');

  // The remote engine adds its `_caller_worker_id` (the bridge's id there), as to any worker's call.
  expect(await call(lw, 'bridge.invoke', { function_id: 'remote::echo', data: { n: 1 } })).toMatchObject({
    echoed: { n: 1, _caller_worker_id: expect.any(String) },
  });
  expect(await call(lw, 'local::echo', { n: 2 })).toMatchObject({ echoed: { n: 2 } });
  expect(await call(lw, 'bridge.invoke', { function_id: 'remote::nothing', data: null })).toBeUndefined();
  const err = await failure(lw, 'bridge.invoke', { function_id: 'remote::fail', data: {} });
  expect(err.message).toMatch(/remote says no/);
  expect((await failure(lw, 'bridge.invoke', { function_id: 'remote::missing', data: {} })).code).toBe(
    'function_not_found',
  );

  await other.has(rw, 'bridged::greet');
  expect(await call(rw, 'bridged::greet', { name: 'remote' })).toBe('hello remote');

  expect(await call(lw, 'bridge.invoke_async', { function_id: 'remote::record', data: { id: 7 } })).toBeUndefined();
  await waitFor(() => fired.length === 1, 'the fire-and-forget call');
  expect(fired[0]).toMatchObject({ id: 7 });
});

test('the remote engine going away fails calls with bridge_unavailable by their deadline; after it returns the bridge reconnects and re-registers', async () => {
  await other.start();
  let rw = other.worker('remote-app');
  rw.registerFunction('remote::echo', async (data: Any) => data);
  await other.has(rw, 'remote::echo');
  const t = await bridged({ expose: [{ local_function: 'local::ping' }] });
  const lw = t.worker('local-app');
  lw.registerFunction('local::ping', async () => 'pong');
  await functionRegistered(t.engine, 'local::ping');
  expect(await call(lw, 'bridge.invoke', { function_id: 'remote::echo', data: 1 })).toBe(1);

  await other.stopWorkers();
  await other.kill();
  const started = Date.now();
  const down = await failure(lw, 'bridge.invoke', { function_id: 'remote::echo', data: 2, timeout_ms: 500 });
  expect(down.code).toBe('bridge_unavailable');
  expect(Date.now() - started).toBeLessThan(3000);
  expect((await failure(lw, 'bridge.invoke_async', { function_id: 'remote::echo', data: 3 })).code).toBe(
    'bridge_unavailable',
  );

  await other.start();
  rw = other.worker('remote-app-2');
  rw.registerFunction('remote::echo', async (data: Any) => data);
  await other.has(rw, 'remote::echo');
  expect(await call(lw, 'bridge.invoke', { function_id: 'remote::echo', data: 4, timeout_ms: 15_000 })).toBe(4);
  await other.has(rw, 'local::ping');
  expect(await call(rw, 'local::ping', {})).toBe('pong');
}, 60_000);

test('a remote engine with a worker token: the bridge presents auth_token; a wrong token is refused and calls fail clearly', async () => {
  await other.start({ III_WORKER_TOKEN: 'secret-token' });
  const rw = other.worker('remote-app', 'secret-token');
  rw.registerFunction('remote::echo', async (data: Any) => data);
  await other.has(rw, 'remote::echo');

  const good = await bridged({ auth_token: 'secret-token' });
  expect(
    await call(good.worker('a'), 'bridge.invoke', { function_id: 'remote::echo', data: 'ok', timeout_ms: 5000 }),
  ).toBe('ok');

  const bad = await bridged({ auth_token: 'wrong' });
  const err = await rejection(
    call(bad.worker('b'), 'bridge.invoke', { function_id: 'remote::echo', data: 'x', timeout_ms: 1000 }),
  );
  expect(err.code).toBe('bridge_unavailable');
}, 30_000);

test('bad input: a missing function_id or a bad timeout is refused naming the field', async () => {
  await other.start();
  const t = await bridged({});
  const lw = t.worker('local-app');
  expect((await failure(lw, 'bridge.invoke', { data: 1 })).message).toMatch(/missing field `function_id`/);
  expect((await failure(lw, 'bridge.invoke', { function_id: 'x', timeout_ms: -5 })).message).toMatch(/timeout_ms/);
});

describe('the bridge adapter of iii-state', () => {
  function stateBridged(): Promise<TestEngine> {
    const base = testConfig();
    const state = { enabled: true, config: { adapter: { name: 'bridge', config: { bridge_url: other.url } } } };
    return startEngine({ modules: { ...base.modules, state } }).then((t) => {
      local.push(t);
      return t;
    });
  }

  test('state::* is served by the other engine; its changes, made there or here, fire local state triggers once', async () => {
    await other.start();
    const rw = other.worker('remote-app');
    const t = await stateBridged();
    const lw = t.worker('local-app');
    const seen: Any[] = [];
    lw.registerFunction('local::on-state', async (event: Any) => void seen.push(event));
    await functionRegistered(t.engine, 'local::on-state');
    lw.registerTrigger({ type: 'state', function_id: 'local::on-state', config: { scope: 'shared' } });
    await waitFor(
      () => t.engine.registry.triggersOfType('state', 'live').some((b) => b.function_id === 'local::on-state'),
      'the local state binding',
    );
    // The mirror binding on the remote engine is in place once a remote write reaches us.
    await waitFor(
      async () => {
        await call(rw, 'state::set', { scope: 'shared', key: 'probe', value: seen.length });
        return seen.length > 0;
      },
      'the first mirrored change',
      10_000,
    );
    const changes = () => seen.filter((e) => e.key !== 'probe');

    expect(await call(lw, 'state::set', { scope: 'shared', key: 'k', value: { from: 'local' } })).toEqual({
      old_value: null,
      new_value: { from: 'local' },
    });
    expect(await call(rw, 'state::get', { scope: 'shared', key: 'k' })).toEqual({ from: 'local' });
    await call(rw, 'state::set', { scope: 'shared', key: 'k', value: { from: 'remote' } });
    expect(await call(lw, 'state::get', { scope: 'shared', key: 'k' })).toEqual({ from: 'remote' });
    expect(await call(lw, 'state::get', { scope: 'shared', key: 'missing' })).toBeUndefined();
    expect(
      (await call(lw, 'state::update', { scope: 'shared', key: 'n', ops: [{ type: 'increment', path: 'c', by: 2 }] }))
        .new_value,
    ).toEqual({ c: 2 });
    expect(await call(lw, 'state::list_groups', {})).toEqual({ groups: ['shared'] });
    expect(await call(lw, 'state::delete', { scope: 'shared', key: 'n' })).toEqual({ c: 2 });

    await waitFor(() => changes().length >= 4, 'four mirrored changes');
    await new Promise((r) => setTimeout(r, 300));
    expect(changes().map((e) => [e.event_type, e.key, e.new_value])).toEqual([
      ['state:created', 'k', { from: 'local' }],
      ['state:updated', 'k', { from: 'remote' }],
      ['state:created', 'n', { c: 2 }],
      ['state:deleted', 'n', null],
    ]);
  }, 30_000);
});

describe('the bridge adapter of configuration', () => {
  test('configuration::* is served by the other engine; its changes, made there or here, fire local configuration triggers once', async () => {
    await other.start();
    const rw = other.worker('remote-app');
    const base = testConfig();
    const configuration = { enabled: true, config: { adapter: { name: 'bridge', config: { bridge_url: other.url } } } };
    const t = await startEngine({ modules: { ...base.modules, configuration } });
    local.push(t);
    const lw = t.worker('local-app');
    const seen: Any[] = [];
    lw.registerFunction('local::on-config', async (event: Any) => void seen.push(event));
    await functionRegistered(t.engine, 'local::on-config');
    lw.registerTrigger({
      type: 'configuration',
      function_id: 'local::on-config',
      config: { configuration_id: 'feature' },
    });
    await waitFor(
      () => t.engine.registry.triggersOfType('configuration', 'live').some((b) => b.function_id === 'local::on-config'),
      'the local binding',
    );

    // The first call waits for the link; the mirror binding is sent right after connecting.
    const schema = { type: 'object', properties: { on: { type: 'boolean' } } };
    await call(lw, 'configuration::register', { id: 'feature', name: 'Feature', schema, initial_value: { on: false } });
    expect(await call(rw, 'configuration::get', { id: 'feature' })).toEqual({ id: 'feature', value: { on: false } });
    expect((await failure(lw, 'configuration::set', { id: 'feature', value: { on: 'yes' } })).code).toBe(
      'SCHEMA_INVALID',
    );
    await call(rw, 'configuration::set', { id: 'feature', value: { on: true } });
    expect(await call(lw, 'configuration::get', { id: 'feature' })).toEqual({ id: 'feature', value: { on: true } });

    await waitFor(() => seen.some((e) => e.event_type === 'configuration:updated'), 'the mirrored update', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const updates = seen.filter((e) => e.event_type === 'configuration:updated');
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({
      type: 'configuration',
      id: 'feature',
      old_value: { on: false },
      new_value: { on: true },
    });
  }, 30_000);
});
