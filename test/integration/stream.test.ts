import type { IIIClient } from 'iii-sdk';
import { createStream } from 'iii-sdk/helpers';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, failure, type Any } from '../support/calls';

/**
 * `iii-stream` functions and the `stream` trigger type (iii-modules.md §9.2, §9.3, §9.5), driven
 * by real iii-sdk workers. The client WebSocket port is in stream-client.test.ts.
 */

/** Registers `functionId` as a handler that records its payloads, bound by a trigger of `type`. */
async function recordTrigger(
  t: TestEngine,
  w: IIIClient,
  functionId: string,
  type: string,
  config: unknown,
): Promise<Any[]> {
  const seen: Any[] = [];
  w.registerFunction(functionId, async (payload: Any) => {
    seen.push(payload);
    return null;
  });
  await functionRegistered(t.engine, functionId);
  w.registerTrigger({ type, function_id: functionId, config });
  await waitFor(
    () => t.engine.registry.triggersOfType(type, 'live').some((b) => b.function_id === functionId),
    `${type} trigger for ${functionId}`,
  );
  return seen;
}

describe('iii-stream functions', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('stream-user');
  });
  afterAll(async () => {
    await t.close();
  });

  test('set returns {old_value, new_value} and get returns the raw value, or null when absent', async () => {
    const item = { stream_name: 'fn-set', group_id: 'g', item_id: 'a' };
    expect(await call(w, 'stream::set', { ...item, data: { n: 1 } })).toEqual({ old_value: null, new_value: { n: 1 } });
    expect(await call(w, 'stream::set', { ...item, data: { n: 2 } })).toEqual({
      old_value: { n: 1 },
      new_value: { n: 2 },
    });
    expect(await call(w, 'stream::get', item)).toEqual({ n: 2 });
    expect(await call(w, 'stream::get', { ...item, item_id: 'missing' })).toBeUndefined();
    expect(
      await call(w, 'stream::get', { stream_name: 'no-such-stream', group_id: 'g', item_id: 'a' }),
    ).toBeUndefined();
  });

  test('delete returns {old_value}: the removed value, or null when nothing was there', async () => {
    const item = { stream_name: 'fn-delete', group_id: 'g', item_id: 'a' };
    await call(w, 'stream::set', { ...item, data: 'v' });
    expect(await call(w, 'stream::delete', item)).toEqual({ old_value: 'v' });
    expect(await call(w, 'stream::delete', item)).toEqual({ old_value: null });
    expect(await call(w, 'stream::get', item)).toBeUndefined();
  });

  test('list is a bare array of values in insertion order; list_groups a bare sorted array of group ids', async () => {
    const s = 'fn-list';
    for (const [group, id, data] of [
      ['g2', 'x', 1],
      ['g1', 'b', 2],
      ['g1', 'a', 3],
      ['g1', 'b', 4],
    ] as const) {
      await call(w, 'stream::set', { stream_name: s, group_id: group, item_id: id, data });
    }
    expect(await call(w, 'stream::list', { stream_name: s, group_id: 'g1' })).toEqual([4, 3]);
    expect(await call(w, 'stream::list_groups', { stream_name: s })).toEqual(['g1', 'g2']);
    expect(await call(w, 'stream::list', { stream_name: s, group_id: 'nope' })).toEqual([]);
    expect(await call(w, 'stream::list_groups', { stream_name: 'no-such-stream' })).toEqual([]);
  });

  test('a group emptied by deletes disappears from list_groups', async () => {
    const item = { stream_name: 'fn-empty', group_id: 'only', item_id: 'a' };
    await call(w, 'stream::set', { ...item, data: 1 });
    expect(await call(w, 'stream::list_groups', { stream_name: 'fn-empty' })).toEqual(['only']);
    await call(w, 'stream::delete', item);
    expect(await call(w, 'stream::list_groups', { stream_name: 'fn-empty' })).toEqual([]);
  });

  test('list_all returns {stream:[{id, groups}], count} sorted by stream id with sorted groups', async () => {
    await call(w, 'stream::set', { stream_name: 'zz-all', group_id: 'b', item_id: 'i', data: 1 });
    await call(w, 'stream::set', { stream_name: 'zz-all', group_id: 'a', item_id: 'i', data: 1 });
    await call(w, 'stream::set', { stream_name: 'yy-all', group_id: 'g', item_id: 'i', data: 1 });
    const out = await call(w, 'stream::list_all', {});
    expect(out.count).toBe(out.stream.length);
    const ids: string[] = out.stream.map((s: Any) => s.id);
    expect(ids).toEqual([...ids].sort());
    expect(out.stream.find((s: Any) => s.id === 'zz-all')).toEqual({ id: 'zz-all', groups: ['a', 'b'] });
    expect(out.stream.find((s: Any) => s.id === 'yy-all')).toEqual({ id: 'yy-all', groups: ['g'] });
  });

  test('update creates the item, applies ops in order and reports failed ops in errors', async () => {
    const item = { stream_name: 'fn-update', group_id: 'g', item_id: 'counter' };
    const first = await call(w, 'stream::update', { ...item, ops: [{ type: 'increment', path: 'n', by: 2 }] });
    expect(first).toEqual({ old_value: null, new_value: { n: 2 } });
    const second = await call(w, 'stream::update', {
      ...item,
      ops: [
        { type: 'increment', path: 'n', by: 3 },
        { type: 'set', path: 'label', value: 'x' },
        { type: 'merge', path: 'n', value: 'not an object' },
      ],
    });
    expect(second.old_value).toEqual({ n: 2 });
    expect(second.new_value).toEqual({ n: 5, label: 'x' });
    expect(second.errors).toEqual([expect.objectContaining({ op_index: 2, code: 'merge.value.not_an_object' })]);
    expect(await call(w, 'stream::get', item)).toEqual({ n: 5, label: 'x' });
  });

  test('concurrent updates of one item are atomic: no increment is lost', async () => {
    const item = { stream_name: 'fn-atomic', group_id: 'g', item_id: 'c' };
    await Promise.all(
      Array.from({ length: 20 }, () =>
        call(w, 'stream::update', { ...item, ops: [{ type: 'increment', path: 'n', by: 1 }] }),
      ),
    );
    expect(await call(w, 'stream::get', item)).toEqual({ n: 20 });
  });

  test('missing or mistyped input fields fail with deserialization_error naming the field, and the node keeps serving', async () => {
    const noGroup = await failure(w, 'stream::set', { stream_name: 's', item_id: 'a', data: 1 });
    expect(noGroup.code).toBe('deserialization_error');
    expect(noGroup.message).toContain('group_id');
    const noData = await failure(w, 'stream::set', { stream_name: 's', group_id: 'g', item_id: 'a' });
    expect(noData.message).toContain('`data`');
    const badName = await failure(w, 'stream::get', { stream_name: 5, group_id: 'g', item_id: 'a' });
    expect(badName.code).toBe('deserialization_error');
    expect(badName.message).toContain('stream_name');
    const badOps = await failure(w, 'stream::update', {
      stream_name: 's',
      group_id: 'g',
      item_id: 'a',
      ops: 'increment',
    });
    expect(badOps.code).toBe('deserialization_error');
    expect(badOps.message).toContain('ops');
    const noType = await failure(w, 'stream::send', { stream_name: 's', group_id: 'g', data: 1 });
    expect(noType.message).toContain('`type`');
    expect(await call(w, 'stream::set', { stream_name: 's', group_id: 'g', item_id: 'a', data: null })).toEqual({
      old_value: null,
      new_value: null,
    });
  });
});

describe('the stream trigger type', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('stream-triggers');
  });
  afterAll(async () => {
    await t.close();
  });

  test('fires create, update and delete with the §9.3 event message', async () => {
    const seen = await recordTrigger(t, w, 'on::change', 'stream', { stream_name: 'tr-basic' });
    const item = { stream_name: 'tr-basic', group_id: 'room', item_id: 'u1' };
    const before = Date.now();
    await call(w, 'stream::set', { ...item, data: { v: 1 } });
    await call(w, 'stream::set', { ...item, data: { v: 2 } });
    await call(w, 'stream::delete', item);
    await waitFor(() => seen.length >= 3, 'three stream events');
    expect(seen.map((e) => e.event)).toEqual([
      { type: 'create', data: { v: 1 } },
      { type: 'update', data: { v: 2 } },
      { type: 'delete', data: { v: 2 } },
    ]);
    expect(seen[0]).toEqual({
      type: 'stream',
      timestamp: expect.any(Number),
      streamName: 'tr-basic',
      groupId: 'room',
      id: 'u1',
      event: { type: 'create', data: { v: 1 } },
    });
    expect(seen[0].timestamp).toBeGreaterThanOrEqual(before);
  });

  test('a delete that removes nothing emits no event', async () => {
    const seen = await recordTrigger(t, w, 'on::nodelete', 'stream', { stream_name: 'tr-nodelete' });
    const item = { stream_name: 'tr-nodelete', group_id: 'g', item_id: 'ghost' };
    await call(w, 'stream::delete', item);
    await call(w, 'stream::set', { ...item, data: 1 });
    await waitFor(() => seen.length >= 1, 'the create event');
    // Events of one writer arrive in order: had the delete emitted, it would come first.
    expect(seen.map((e) => e.event.type)).toEqual(['create']);
  });

  test('update emits create then update', async () => {
    const seen = await recordTrigger(t, w, 'on::update', 'stream', { stream_name: 'tr-update' });
    const item = { stream_name: 'tr-update', group_id: 'g', item_id: 'c' };
    await call(w, 'stream::update', { ...item, ops: [{ type: 'set', path: 'a', value: 1 }] });
    await call(w, 'stream::update', { ...item, ops: [{ type: 'set', path: 'b', value: 2 }] });
    await waitFor(() => seen.length >= 2, 'two update events');
    expect(seen.map((e) => e.event)).toEqual([
      { type: 'create', data: { a: 1 } },
      { type: 'update', data: { a: 1, b: 2 } },
    ]);
  });

  test('send fires {type:"event", event:{type, data}} with the id, or null without one, and stores nothing', async () => {
    const seen = await recordTrigger(t, w, 'on::send', 'stream', { stream_name: 'tr-send' });
    expect(
      await call(w, 'stream::send', { stream_name: 'tr-send', group_id: 'g', type: 'typing', data: { who: 'ann' } }),
    ).toBeUndefined();
    await call(w, 'stream::send', { stream_name: 'tr-send', group_id: 'g', id: 'x', type: 'ping', data: 1 });
    await waitFor(() => seen.length >= 2, 'two send events');
    expect(seen[0]).toMatchObject({
      streamName: 'tr-send',
      groupId: 'g',
      id: null,
      event: { type: 'event', event: { type: 'typing', data: { who: 'ann' } } },
    });
    expect(seen[1]).toMatchObject({ id: 'x', event: { type: 'event', event: { type: 'ping', data: 1 } } });
    expect(await call(w, 'stream::list_groups', { stream_name: 'tr-send' })).toEqual([]);
  });

  test('group_id and item_id filter the events a binding gets', async () => {
    const byGroup = await recordTrigger(t, w, 'on::group', 'stream', { stream_name: 'tr-filter', group_id: 'g1' });
    const byItem = await recordTrigger(t, w, 'on::item', 'stream', {
      stream_name: 'tr-filter',
      group_id: 'g1',
      item_id: 'keep',
    });
    await call(w, 'stream::set', { stream_name: 'tr-filter', group_id: 'g2', item_id: 'keep', data: 'other group' });
    await call(w, 'stream::set', { stream_name: 'tr-filter', group_id: 'g1', item_id: 'drop', data: 'other item' });
    await call(w, 'stream::set', { stream_name: 'tr-filter', group_id: 'g1', item_id: 'keep', data: 'match' });
    await call(w, 'stream::set', {
      stream_name: 'other-stream',
      group_id: 'g1',
      item_id: 'keep',
      data: 'other stream',
    });
    await call(w, 'stream::set', { stream_name: 'tr-filter', group_id: 'g1', item_id: 'last', data: 'last' });
    await waitFor(() => byGroup.length >= 3, 'the group binding events');
    expect(byGroup.map((e) => e.event.data)).toEqual(['other item', 'match', 'last']);
    expect(byItem.map((e) => e.event.data)).toEqual(['match']);
  });

  test('condition_function_id returning false skips the handler for that event', async () => {
    w.registerFunction('cond::only-big', async (event: Any) => event.event.data.n > 10);
    await functionRegistered(t.engine, 'cond::only-big');
    const seen = await recordTrigger(t, w, 'on::cond', 'stream', {
      stream_name: 'tr-cond',
      condition_function_id: 'cond::only-big',
    });
    for (const n of [1, 50, 2, 99])
      await call(w, 'stream::set', { stream_name: 'tr-cond', group_id: 'g', item_id: `i${n}`, data: { n } });
    await waitFor(() => seen.length >= 2, 'the two passing events');
    await call(w, 'stream::set', { stream_name: 'tr-cond', group_id: 'g', item_id: 'final', data: { n: 1000 } });
    await waitFor(() => seen.length >= 3, 'the final event');
    expect(seen.map((e) => e.event.data.n).sort((a: number, b: number) => a - b)).toEqual([50, 99, 1000]);
  });

  test('a stream trigger without stream_name is refused with a message naming it; the node keeps serving', async () => {
    w.registerFunction('on::nothing', async () => null);
    await functionRegistered(t.engine, 'on::nothing');
    const err = await failure(w, 'engine::register_trigger', {
      trigger_type: 'stream',
      function_id: 'on::nothing',
      config: { group_id: 'g' },
    });
    expect(err.code).toBe('trigger_registration_failed');
    expect(err.message).toContain('stream_name');
    const bad = await failure(w, 'engine::register_trigger', {
      trigger_type: 'stream',
      function_id: 'on::nothing',
      config: { stream_name: 7 },
    });
    expect(bad.message).toContain('stream_name');
    // A worker's own registration is answered with triggerregistrationresult{error}, which the SDK logs.
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      w.registerTrigger({ type: 'stream', function_id: 'on::nothing', config: {} });
      const line = await waitFor(
        () =>
          logged.mock.calls.map((args) => String(args[0])).find((text) => text.includes('Trigger registration failed')),
        'the SDK to log the refusal',
      );
      expect(line).toContain('stream_name');
    } finally {
      logged.mockRestore();
    }
    expect(t.engine.registry.triggersOfType('stream').some((b) => b.function_id === 'on::nothing')).toBe(false);
    expect(await call(w, 'stream::get', { stream_name: 'x', group_id: 'g', item_id: 'i' })).toBeUndefined();
  });
});

describe('custom streams (stream::<op>(<name>) registered by a worker)', () => {
  let t: TestEngine;
  let w: IIIClient;
  beforeAll(async () => {
    t = await startEngine();
    w = t.worker('stream-custom');
  });
  afterAll(async () => {
    await t.close();
  });

  /** A map-backed IStream, registered with the SDK's createStream, that records what it was asked. */
  function customStream(name: string): { items: Map<string, Any>; calls: Any[] } {
    const items = new Map<string, Any>();
    const calls: Any[] = [];
    const key = (i: Any) => `${i.group_id}/${i.item_id}`;
    createStream(w, name, {
      async get(input) {
        calls.push({ op: 'get', input });
        return items.get(key(input)) ?? null;
      },
      async set(input) {
        calls.push({ op: 'set', input });
        const old = items.get(key(input));
        items.set(key(input), input.data);
        return { old_value: old, new_value: input.data };
      },
      async delete(input) {
        calls.push({ op: 'delete', input });
        const old = items.get(key(input));
        items.delete(key(input));
        return { old_value: old };
      },
      async list(input) {
        calls.push({ op: 'list', input });
        return [...items.entries()].filter(([k]) => k.startsWith(`${input.group_id}/`)).map(([, v]) => v);
      },
      async listGroups(input) {
        calls.push({ op: 'list_groups', input });
        return [...new Set([...items.keys()].map((k) => k.split('/')[0]))];
      },
      async update() {
        throw new Error('createStream does not register update');
      },
    });
    return { items, calls };
  }

  test('get, set, delete, list and list_groups go to the functions createStream registered', async () => {
    const custom = customStream('presence');
    await functionRegistered(t.engine, 'stream::list_groups(presence)');
    const item = { stream_name: 'presence', group_id: 'room', item_id: 'ann' };
    expect(await call(w, 'stream::set', { ...item, data: { online: true } })).toEqual({ new_value: { online: true } });
    expect(custom.items.get('room/ann')).toEqual({ online: true });
    expect(await call(w, 'stream::get', item)).toEqual({ online: true });
    expect(await call(w, 'stream::list', { stream_name: 'presence', group_id: 'room' })).toEqual([{ online: true }]);
    expect(await call(w, 'stream::list_groups', { stream_name: 'presence' })).toEqual(['room']);
    expect(await call(w, 'stream::delete', item)).toEqual({ old_value: { online: true } });
    expect(custom.calls.map((c) => c.op)).toEqual(['set', 'get', 'list', 'list_groups', 'delete']);
    expect(custom.calls[0].input).toMatchObject({ ...item, data: { online: true } });
    // The engine's own storage was not touched.
    const all = await call(w, 'stream::list_all', {});
    expect(all.stream.map((s: Any) => s.id)).not.toContain('presence');
  });

  test('writes to a custom stream still fire stream triggers', async () => {
    customStream('custom-events');
    await functionRegistered(t.engine, 'stream::set(custom-events)');
    const seen = await recordTrigger(t, w, 'on::custom', 'stream', { stream_name: 'custom-events' });
    const item = { stream_name: 'custom-events', group_id: 'g', item_id: 'i' };
    await call(w, 'stream::set', { ...item, data: 1 });
    await call(w, 'stream::set', { ...item, data: 2 });
    await call(w, 'stream::delete', item);
    await call(w, 'stream::delete', item);
    await call(w, 'stream::set', { ...item, data: 3 });
    await waitFor(() => seen.length >= 4, 'four events');
    expect(seen.map((e) => e.event)).toEqual([
      { type: 'create', data: 1 },
      { type: 'update', data: 2 },
      { type: 'delete', data: 2 },
      { type: 'create', data: 3 },
    ]);
  });

  test('update on a custom stream without stream::update(<name>) reads and writes through its get and set', async () => {
    const custom = customStream('custom-update');
    await functionRegistered(t.engine, 'stream::set(custom-update)');
    const item = { stream_name: 'custom-update', group_id: 'g', item_id: 'c' };
    await call(w, 'stream::set', { ...item, data: { n: 1 } });
    const out = await call(w, 'stream::update', { ...item, ops: [{ type: 'increment', path: 'n', by: 4 }] });
    expect(out).toEqual({ old_value: { n: 1 }, new_value: { n: 5 } });
    expect(custom.items.get('g/c')).toEqual({ n: 5 });
  });

  test('a hand-registered stream::update(<name>) and stream::send(<name>) take those calls', async () => {
    const updates: Any[] = [];
    const sends: Any[] = [];
    w.registerFunction('stream::update(manual)', async (input: Any) => {
      updates.push(input);
      return { old_value: null, new_value: { by: 'custom' } };
    });
    w.registerFunction('stream::send(manual)', async (input: Any) => {
      sends.push(input);
      return null;
    });
    await functionRegistered(t.engine, 'stream::update(manual)');
    await functionRegistered(t.engine, 'stream::send(manual)');
    const seen = await recordTrigger(t, w, 'on::manual', 'stream', { stream_name: 'manual' });
    const out = await call(w, 'stream::update', { stream_name: 'manual', group_id: 'g', item_id: 'i', ops: [] });
    expect(out).toEqual({ old_value: null, new_value: { by: 'custom' } });
    expect(updates[0]).toMatchObject({ stream_name: 'manual', group_id: 'g', item_id: 'i', ops: [] });
    await call(w, 'stream::send', { stream_name: 'manual', group_id: 'g', type: 'hello', data: 1 });
    expect(sends[0]).toMatchObject({ stream_name: 'manual', type: 'hello' });
    await waitFor(() => seen.length >= 2, 'the update and send events');
    expect(seen.map((e) => e.event.type)).toEqual(['create', 'event']);
  });

  test('a failing custom function surfaces as the operation error code with its message', async () => {
    w.registerFunction('stream::get(broken)', async () => {
      throw new Error('disk on fire');
    });
    await functionRegistered(t.engine, 'stream::get(broken)');
    const err = await failure(w, 'stream::get', { stream_name: 'broken', group_id: 'g', item_id: 'i' });
    expect(err.code).toBe('STREAM_GET_ERROR');
    expect(err.message).toContain('disk on fire');
    expect(await call(w, 'stream::get', { stream_name: 'fine', group_id: 'g', item_id: 'i' })).toBeUndefined();
  });
});

describe('iii-stream adapters', () => {
  test('an unknown adapter name is refused with the supported names', async () => {
    const base = testConfig();
    const stream = base.modules['stream'];
    // The schema refuses it while the engine is built.
    let engine: Engine | undefined;
    const starting = Promise.resolve().then(async () => {
      engine = createEngine(
        testConfig({
          modules: { ...base.modules, stream: { ...stream, config: { ...stream.config, adapter: { name: 'nats' } } } },
        }),
        { logger: silentLogger },
      );
      await engine.start();
    });
    await expect(starting).rejects.toThrow('config.adapter.name: expected one of "kv", "redis", "bridge", got "nats"');
    await engine?.stop();
  });

  test('a kv store_method other than in_memory or file_based is refused at start', async () => {
    const base = testConfig();
    const stream = base.modules['stream'];
    const adapter = { name: 'kv', config: { store_method: 'on_tape', file_path: '/tmp/x' } };
    const engine = createEngine(
      testConfig({ modules: { ...base.modules, stream: { ...stream, config: { ...stream.config, adapter } } } }),
      { logger: silentLogger },
    );
    await expect(engine.start()).rejects.toThrow(/store_method 'on_tape' is not supported.*in_memory, file_based/);
    await engine.stop();
  });
});
