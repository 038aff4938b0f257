import type { IIIClient } from 'iii-sdk';
import WebSocket from 'ws';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';
import { call, failure, type Any } from '../support/calls';

/**
 * The engine's built-in functions and trigger types (protocol reference §4), exercised the way
 * workers use them: real iii-sdk workers calling `engine::*` through `trigger()`.
 */

/** Waits until a connected worker has reported `name` via engine::workers::register; returns its id. */
function workerId(t: TestEngine, name: string): Promise<string> {
  return waitFor(
    () => [...t.engine.registry.workers()].find((w) => w.kind === 'worker' && w.name === name)?.id,
    `worker ${name} metadata`,
  );
}

function liveBindings(t: TestEngine, type: string): number {
  return t.engine.registry.triggersOfType(type, 'live').length;
}

/** A worker-provided trigger type that records the bindings delivered to it. */
function provideType(
  provider: IIIClient,
  type: Record<string, unknown> & { id: string; description: string },
  options: { reject?: string } = {},
): { active: Map<string, Any> } {
  const active = new Map<string, Any>();
  provider.registerTriggerType(type, {
    async registerTrigger(binding: Any) {
      if (options.reject) throw new Error(options.reject);
      active.set(binding.id, binding);
    },
    async unregisterTrigger(binding: Any) {
      active.delete(binding.id);
    },
  });
  return { active };
}

describe('engine built-in functions and trigger types', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
  });

  // ---------------------------------------------------------------- engine::functions::list

  describe('engine::functions::list', () => {
    test('returns {functions:[{function_id, worker_name, description?, metadata?}]} with the reported worker name', async () => {
      const w = t.worker('lister');
      w.registerFunction('alpha::one', async () => null, { description: 'First one', metadata: { team: 'a' } });
      w.registerFunction('alpha::two', async () => null);
      await workerId(t, 'lister');
      await functionRegistered(t.engine, 'alpha::two');
      const out = await call(w, 'engine::functions::list', {});
      expect(Object.keys(out)).toEqual(['functions']);
      const byId = new Map<string, Any>(out.functions.map((f: Any) => [f.function_id, f]));
      expect(byId.get('alpha::one')).toEqual({
        function_id: 'alpha::one',
        namespace: 'default',
        worker_name: 'lister',
        description: 'First one',
        metadata: { team: 'a' },
      });
      expect(byId.get('alpha::two')).toEqual({
        function_id: 'alpha::two',
        namespace: 'default',
        worker_name: 'lister',
      });
    });

    test('is sorted by function_id without a search', async () => {
      const w = t.worker('sorter');
      for (const id of ['m::b', 'z::a', 'a::z', 'm::a']) w.registerFunction(id, async () => null);
      await functionRegistered(t.engine, 'm::a');
      await functionRegistered(t.engine, 'a::z');
      const ids: string[] = (await call(w, 'engine::functions::list', {})).functions.map((f: Any) => f.function_id);
      expect(ids).toEqual([...ids].sort());
      expect(ids).toEqual(expect.arrayContaining(['a::z', 'm::a', 'm::b', 'z::a']));
    });

    test('hides engine::* functions by default and shows them with include_internal', async () => {
      const w = t.worker('internal-check');
      w.registerFunction('visible::fn', async () => null);
      await functionRegistered(t.engine, 'visible::fn');
      const plain: Any[] = (await call(w, 'engine::functions::list', {})).functions;
      expect(plain.map((f) => f.function_id)).toContain('visible::fn');
      // As in the original, the queue's inspection functions (engine::queue::*) stay visible.
      expect(
        plain.filter((f) => f.function_id.startsWith('engine::') && !f.function_id.startsWith('engine::queue::')),
      ).toEqual([]);

      const all: Any[] = (await call(w, 'engine::functions::list', { include_internal: true })).functions;
      const byId = new Map(all.map((f) => [f.function_id, f]));
      expect(byId.get('engine::functions::list')).toMatchObject({ worker_name: 'iii-engine-functions' });
      expect(byId.get('engine::workers::register')).toMatchObject({ worker_name: 'iii-engine-functions' });
      expect(byId.get('engine::log::info')).toMatchObject({ worker_name: 'iii-observability' });
      expect(byId.has('visible::fn')).toBe(true);
    });

    test('hides functions whose metadata.internal is true unless include_internal', async () => {
      const w = t.worker('meta-internal');
      w.registerFunction('secret::fn', async () => null, { metadata: { internal: true } });
      w.registerFunction('notsecret::fn', async () => null, { metadata: { internal: false } });
      await functionRegistered(t.engine, 'secret::fn');
      await functionRegistered(t.engine, 'notsecret::fn');
      const plain: string[] = (await call(w, 'engine::functions::list', {})).functions.map((f: Any) => f.function_id);
      expect(plain).not.toContain('secret::fn');
      expect(plain).toContain('notsecret::fn');
      const all: Any[] = (await call(w, 'engine::functions::list', { include_internal: true })).functions;
      expect(all.find((f) => f.function_id === 'secret::fn')).toEqual({
        function_id: 'secret::fn',
        namespace: 'default',
        worker_name: 'meta-internal',
        metadata: { internal: true },
      });
    });

    test('prefix keeps ids that start with it', async () => {
      const w = t.worker('prefixer');
      for (const id of ['orders::create', 'orders::cancel', 'ordersx::other', 'billing::orders'])
        w.registerFunction(id, async () => null);
      await functionRegistered(t.engine, 'billing::orders');
      await functionRegistered(t.engine, 'orders::create');
      const ids = (await call(w, 'engine::functions::list', { prefix: 'orders::' })).functions.map(
        (f: Any) => f.function_id,
      );
      expect(ids).toEqual(['orders::cancel', 'orders::create']);
    });

    test('worker and workers filter on the exact worker_name (OR)', async () => {
      const a = t.worker('team-a');
      const b = t.worker('team-b');
      const c = t.worker('team-c');
      a.registerFunction('wa::fn', async () => null);
      b.registerFunction('wb::fn', async () => null);
      c.registerFunction('wc::fn', async () => null);
      await Promise.all([workerId(t, 'team-a'), workerId(t, 'team-b'), workerId(t, 'team-c')]);
      const one = (await call(a, 'engine::functions::list', { worker: 'team-b' })).functions;
      expect(one).toEqual([{ function_id: 'wb::fn', namespace: 'default', worker_name: 'team-b' }]);
      const two = (await call(a, 'engine::functions::list', { workers: ['team-a', 'team-c'] })).functions.map(
        (f: Any) => f.function_id,
      );
      expect(two).toEqual(['wa::fn', 'wc::fn']);
      const prefixOnly = (await call(a, 'engine::functions::list', { worker: 'team' })).functions;
      expect(prefixOnly).toEqual([]);
      const includeInternal = (
        await call(a, 'engine::functions::list', { worker: 'iii-engine-functions', include_internal: true })
      ).functions;
      expect(includeInternal.length).toBeGreaterThan(0);
      expect(includeInternal.every((f: Any) => f.function_id.startsWith('engine::'))).toBe(true);
    });

    test('search matches id or description case-insensitively and ranks id-prefix/segment, then substring, then description', async () => {
      const w = t.worker('searcher');
      w.registerFunction('zeta::find', async () => null);
      w.registerFunction('findme::x', async () => null);
      w.registerFunction('b::find::deep', async () => null);
      w.registerFunction('abc::refinder', async () => null);
      w.registerFunction('aaa::prefind', async () => null);
      w.registerFunction('abc::other', async () => null, { description: 'Can FIND things' });
      w.registerFunction('abc::none', async () => null, { description: 'nothing here' });
      await functionRegistered(t.engine, 'abc::none');
      await functionRegistered(t.engine, 'zeta::find');
      const ids = (await call(w, 'engine::functions::list', { search: 'find' })).functions.map(
        (f: Any) => f.function_id,
      );
      expect(ids).toEqual([
        // rank 0: id starts with the needle or a `::` segment equals it, alphabetical
        'b::find::deep',
        'findme::x',
        'zeta::find',
        // rank 1: id contains it
        'aaa::prefind',
        'abc::refinder',
        // rank 2: description only
        'abc::other',
      ]);
    });
  });

  // ---------------------------------------------------------------- engine::functions::info

  describe('engine::functions::info', () => {
    const requestFormat = { type: 'object' as const, properties: { sku: { type: 'string' } }, required: ['sku'] };
    const responseFormat = { type: 'object' as const, properties: { id: { type: 'string' } } };

    test('single id: FunctionDetail with schemas from request_format/response_format and registered_triggers', async () => {
      const w = t.worker('detailer');
      w.registerFunction('orders::create', async () => null, {
        description: 'Create an order',
        request_format: requestFormat,
        response_format: responseFormat,
        metadata: { owner: 'orders' },
      });
      w.registerTrigger({ type: 'engine::workers-available', function_id: 'orders::create', config: { note: 'x' } });
      await workerId(t, 'detailer');
      await waitFor(() => liveBindings(t, 'engine::workers-available') === 1, 'binding live');
      const bindingId = t.engine.registry.triggersOfType('engine::workers-available')[0].id;
      const out = await call(w, 'engine::functions::info', { function_id: 'orders::create' });
      expect(out).toEqual({
        function_id: 'orders::create',
        namespace: 'default',
        worker_name: 'detailer',
        description: 'Create an order',
        request_schema: requestFormat,
        response_schema: responseFormat,
        metadata: { owner: 'orders' },
        registered_triggers: [{ id: bindingId, trigger_type: 'engine::workers-available', config: { note: 'x' } }],
      });
    });

    test('single id of an unknown function: NOT_FOUND', async () => {
      const w = t.worker('detailer');
      await workerId(t, 'detailer');
      const err = await failure(w, 'engine::functions::info', { function_id: 'nobody::here' });
      expect(err).toMatchObject({
        code: 'NOT_FOUND',
        message: "NOT_FOUND: Function 'nobody::here' is not registered.",
      });
    });

    test('batch: details in order, de-duplicated, a missing id as {function_id, error:"not_found"}', async () => {
      const w = t.worker('batcher');
      w.registerFunction('b::one', async () => null, { description: 'one' });
      w.registerFunction('b::two', async () => null);
      await functionRegistered(t.engine, 'b::two');
      await workerId(t, 'batcher');
      const out = await call(w, 'engine::functions::info', {
        function_ids: ['b::two', 'b::missing', 'b::one', 'b::two'],
      });
      expect(out).toEqual({
        functions: [
          { function_id: 'b::two', namespace: 'default', worker_name: 'batcher', registered_triggers: [] },
          { function_id: 'b::missing', error: 'not_found' },
          {
            function_id: 'b::one',
            namespace: 'default',
            worker_name: 'batcher',
            description: 'one',
            registered_triggers: [],
          },
        ],
      });
    });

    test('both, neither, an empty list or more than 32 ids: INVALID_ARGUMENTS', async () => {
      const w = t.worker('invalid');
      await workerId(t, 'invalid');
      const cases: unknown[] = [
        { function_id: 'a::b', function_ids: ['a::b'] },
        {},
        { function_ids: [] },
        { function_ids: Array.from({ length: 33 }, (_, i) => `many::f${i}`) },
      ];
      for (const payload of cases) {
        const err = await failure(w, 'engine::functions::info', payload);
        expect({ payload, code: err.code }).toEqual({ payload, code: 'INVALID_ARGUMENTS' });
      }
      // Exactly 32 is fine.
      const ok = await call(w, 'engine::functions::info', {
        function_ids: Array.from({ length: 32 }, (_, i) => `many::f${i}`),
      });
      expect(ok.functions).toHaveLength(32);
    });

    test('a non-object payload (null, a string): deserialization_error', async () => {
      const w = t.worker('badinput');
      await workerId(t, 'badinput');
      for (const payload of [null, 'orders::create', 42, ['a']]) {
        const err = await failure(w, 'engine::functions::info', payload);
        expect({ payload, code: err.code }).toEqual({ payload, code: 'deserialization_error' });
        expect(err.message).toContain('Failed to deserialize input for engine::functions::info');
      }
    });
  });

  // ---------------------------------------------------------------- engine::triggers::*

  describe('engine::triggers::list / info', () => {
    const configSchema = { type: 'object', properties: { path: { type: 'string' } } };
    const callSchema = { type: 'object', properties: { body: { type: 'string' } } };

    test('list: worker-provided types with provider name and description, no schemas, engine::* hidden unless include_internal', async () => {
      const p = t.worker('hook-provider');
      provideType(p, {
        id: 'test::webhook',
        description: 'Webhook trigger',
        trigger_request_format: configSchema,
        call_request_format: callSchema,
      });
      provideType(p, { id: 'test::alarm', description: 'Alarm trigger' });
      await workerId(t, 'hook-provider');
      await waitFor(() => t.engine.registry.triggerType('test::webhook'), 'type registered');
      const plain: Any[] = (await call(p, 'engine::triggers::list', {})).triggers;
      expect(plain.find((x) => x.id === 'test::webhook')).toEqual({
        id: 'test::webhook',
        namespace: 'default',
        worker_name: 'hook-provider',
        description: 'Webhook trigger',
      });
      expect(plain.filter((x) => x.id.startsWith('engine::'))).toEqual([]);
      const ids = plain.map((x) => x.id);
      expect(ids).toEqual([...ids].sort());

      const all: Any[] = (await call(p, 'engine::triggers::list', { include_internal: true })).triggers;
      expect(all).toEqual(
        expect.arrayContaining([
          {
            id: 'engine::functions-available',
            namespace: 'default',
            worker_name: 'iii-engine-functions',
            description: expect.any(String),
          },
          {
            id: 'engine::workers-available',
            namespace: 'default',
            worker_name: 'iii-engine-functions',
            description: expect.any(String),
          },
        ]),
      );
    });

    test('list filters: prefix and worker', async () => {
      const p = t.worker('prov-one');
      const q = t.worker('prov-two');
      provideType(p, { id: 'one::a', description: 'A' });
      provideType(p, { id: 'one::b', description: 'B' });
      provideType(q, { id: 'two::c', description: 'C' });
      await Promise.all([workerId(t, 'prov-one'), workerId(t, 'prov-two')]);
      await waitFor(
        () => t.engine.registry.triggerType('two::c') && t.engine.registry.triggerType('one::b'),
        'types registered',
      );
      const byPrefix = (await call(p, 'engine::triggers::list', { prefix: 'one::' })).triggers.map((x: Any) => x.id);
      expect(byPrefix).toEqual(['one::a', 'one::b']);
      const byWorker = (await call(p, 'engine::triggers::list', { worker: 'prov-two' })).triggers.map((x: Any) => x.id);
      expect(byWorker).toEqual(['two::c']);
    });

    test('info: description, configuration_schema from trigger_request_format, request_schema, instance_count of live bindings', async () => {
      const p = t.worker('hook-provider');
      const w = t.worker('hook-user');
      const { active } = provideType(p, {
        id: 'test::webhook',
        description: 'Webhook trigger',
        trigger_request_format: configSchema,
        call_request_format: callSchema,
      });
      w.registerFunction('hooks::on', async () => null);
      const first = w.registerTrigger({ type: 'test::webhook', function_id: 'hooks::on', config: { path: '/a' } });
      w.registerTrigger({ type: 'test::webhook', function_id: 'hooks::on', config: { path: '/b' } });
      await workerId(t, 'hook-provider');
      await waitFor(() => active.size === 2, 'provider got both bindings');
      await waitFor(() => liveBindings(t, 'test::webhook') === 2, 'both bindings live');
      const info = await call(w, 'engine::triggers::info', { id: 'test::webhook' });
      expect(info).toEqual({
        id: 'test::webhook',
        namespace: 'default',
        worker_name: 'hook-provider',
        description: 'Webhook trigger',
        configuration_schema: configSchema,
        request_schema: callSchema,
        instance_count: 2,
      });
      first.unregister();
      await waitFor(() => active.size === 1, 'provider told of the removal');
      expect((await call(w, 'engine::triggers::info', { id: 'test::webhook' })).instance_count).toBe(1);
    });

    test('info of an engine type works; unknown type: NOT_FOUND', async () => {
      const w = t.worker('asker');
      await workerId(t, 'asker');
      const builtin = await call(w, 'engine::triggers::info', { id: 'engine::workers-available' });
      expect(builtin).toMatchObject({
        id: 'engine::workers-available',
        namespace: 'default',
        worker_name: 'iii-engine-functions',
        instance_count: 0,
      });
      const err = await failure(w, 'engine::triggers::info', { id: 'no::such-type' });
      expect(err).toMatchObject({
        code: 'NOT_FOUND',
        message: "NOT_FOUND: Trigger type 'no::such-type' is not registered.",
      });
    });
  });

  // ---------------------------------------------------------------- engine::registered-triggers::*

  describe('engine::registered-triggers::list / info', () => {
    test('list: live bindings with worker_name and config_summary, sorted by id; parked ones only once their type appears', async () => {
      const w = t.worker('binder');
      w.registerFunction('rt::target', async () => null);
      w.registerTrigger({ type: 'rt::hook', function_id: 'rt::target', config: { path: '/a' } });
      w.registerTrigger({ type: 'rt::hook', function_id: 'rt::target', config: { text: 'x'.repeat(100) } });
      await workerId(t, 'binder');
      await waitFor(() => t.engine.registry.triggersOfType('rt::hook', 'parked').length === 2, 'bindings parked');
      // Type not registered yet: the bindings are parked and not listed.
      expect((await call(w, 'engine::registered-triggers::list', {})).registered_triggers).toEqual([]);

      const p = t.worker('rt-provider');
      const { active } = provideType(p, { id: 'rt::hook', description: 'hook' });
      await waitFor(() => active.size === 2, 'parked bindings delivered');
      const rows: Any[] = (await call(w, 'engine::registered-triggers::list', {})).registered_triggers;
      expect(rows).toHaveLength(2);
      expect(rows.map((r) => r.id)).toEqual([...active.keys()].sort());
      const longJson = JSON.stringify({ text: 'x'.repeat(100) });
      expect(rows).toEqual(
        expect.arrayContaining([
          {
            id: expect.any(String),
            trigger_type: 'rt::hook',
            function_id: 'rt::target',
            namespace: 'default',
            worker_name: 'binder',
            config: { path: '/a' },
            config_summary: '{"path":"/a"}',
          },
          {
            id: expect.any(String),
            trigger_type: 'rt::hook',
            function_id: 'rt::target',
            namespace: 'default',
            worker_name: 'binder',
            config: { text: 'x'.repeat(100) },
            config_summary: `${longJson.slice(0, 80)}…`,
          },
        ]),
      );
    });

    test('list filters: trigger_type, function_id, worker; engine::* targets hidden unless include_internal', async () => {
      const p = t.worker('fprov');
      const a = t.worker('fa');
      const b = t.worker('fb');
      const { active } = provideType(p, { id: 'f::hook', description: 'hook' });
      a.registerFunction('fa::fn', async () => null);
      b.registerFunction('fb::fn', async () => null);
      a.registerTrigger({ type: 'f::hook', function_id: 'fa::fn', config: {} });
      b.registerTrigger({ type: 'f::hook', function_id: 'fb::fn', config: {} });
      b.registerTrigger({ type: 'engine::workers-available', function_id: 'fb::fn', config: {} });
      a.registerTrigger({ type: 'f::hook', function_id: 'engine::functions::list', config: {} });
      await Promise.all([workerId(t, 'fa'), workerId(t, 'fb'), workerId(t, 'fprov')]);
      await waitFor(() => active.size === 3 && liveBindings(t, 'engine::workers-available') === 1, 'bindings live');
      const list = async (payload: object) =>
        ((await call(a, 'engine::registered-triggers::list', payload)).registered_triggers as Any[])
          .map((r) => `${r.trigger_type}>${r.function_id}`)
          .sort();
      expect(await list({})).toEqual(['engine::workers-available>fb::fn', 'f::hook>fa::fn', 'f::hook>fb::fn']);
      expect(await list({ include_internal: true })).toEqual([
        'engine::workers-available>fb::fn',
        'f::hook>engine::functions::list',
        'f::hook>fa::fn',
        'f::hook>fb::fn',
      ]);
      expect(await list({ trigger_type: 'f::hook' })).toEqual(['f::hook>fa::fn', 'f::hook>fb::fn']);
      expect(await list({ function_id: 'fb::fn' })).toEqual(['engine::workers-available>fb::fn', 'f::hook>fb::fn']);
      expect(await list({ worker: 'fa' })).toEqual(['f::hook>fa::fn']);
    });

    test('info: binding with metadata, its trigger type (triggers::info shape) and function (FunctionDetail)', async () => {
      const p = t.worker('iprov');
      const w = t.worker('iuser');
      const { active } = provideType(p, {
        id: 'i::hook',
        description: 'info hook',
        trigger_request_format: { type: 'object' },
      });
      w.registerFunction('i::target', async () => null, { description: 'target fn' });
      w.registerTrigger({
        type: 'i::hook',
        function_id: 'i::target',
        config: { path: '/x' },
        metadata: { owner: 'team-i' },
      });
      await Promise.all([workerId(t, 'iprov'), workerId(t, 'iuser')]);
      await waitFor(() => active.size === 1, 'binding delivered');
      const id = [...active.keys()][0];
      const info = await call(w, 'engine::registered-triggers::info', { id });
      const typeInfo = await call(w, 'engine::triggers::info', { id: 'i::hook' });
      const fnInfo = await call(w, 'engine::functions::info', { function_id: 'i::target' });
      expect(info).toEqual({
        id,
        trigger_type: 'i::hook',
        function_id: 'i::target',
        namespace: 'default',
        worker_name: 'iuser',
        config: { path: '/x' },
        metadata: { owner: 'team-i' },
        trigger: typeInfo,
        function: fnInfo,
      });
      expect(typeInfo).toMatchObject({ id: 'i::hook', instance_count: 1, configuration_schema: { type: 'object' } });
      expect(fnInfo.registered_triggers).toEqual([{ id, trigger_type: 'i::hook', config: { path: '/x' } }]);
    });

    test('config_summary is cut at 80 characters (code points), not UTF-16 units', async () => {
      const w = t.worker('emoji-binder');
      const p = t.worker('emoji-provider');
      const { active } = provideType(p, { id: 'emoji::hook', description: 'hook' });
      w.registerFunction('emoji::target', async () => null);
      const short = { t: '😀'.repeat(50) }; // 58 characters of JSON, 108 UTF-16 units
      const long = { u: '😀'.repeat(100) }; // 108 characters of JSON
      w.registerTrigger({ type: 'emoji::hook', function_id: 'emoji::target', config: short });
      w.registerTrigger({ type: 'emoji::hook', function_id: 'emoji::target', config: long });
      await Promise.all([workerId(t, 'emoji-binder'), workerId(t, 'emoji-provider')]);
      await waitFor(() => active.size === 2, 'bindings delivered');
      const rows: Any[] = (await call(w, 'engine::registered-triggers::list', { function_id: 'emoji::target' }))
        .registered_triggers;
      const summaryOf = (config: object) =>
        rows.find((r) => JSON.stringify(r.config) === JSON.stringify(config))?.config_summary;
      expect(summaryOf(short)).toBe(JSON.stringify(short));
      expect(summaryOf(long)).toBe(`${Array.from(JSON.stringify(long)).slice(0, 80).join('')}…`);
    });

    test('info of an unknown id: NOT_FOUND', async () => {
      const w = t.worker('iask');
      await workerId(t, 'iask');
      const err = await failure(w, 'engine::registered-triggers::info', { id: 'no-such-binding' });
      expect(err).toMatchObject({
        code: 'NOT_FOUND',
        message: "NOT_FOUND: Registered trigger 'no-such-binding' was not found.",
      });
    });
  });

  // ---------------------------------------------------------------- engine::workers::*

  describe('engine::workers::list / info / register', () => {
    test('list: connected SDK workers with their reported metadata, and in-process modules', async () => {
      const a = t.worker('wl-alpha');
      const b = t.worker('wl-beta');
      a.registerFunction('wl::one', async () => null);
      a.registerFunction('wl::two', async () => null);
      const [aId, bId] = await Promise.all([workerId(t, 'wl-alpha'), workerId(t, 'wl-beta')]);
      await functionRegistered(t.engine, 'wl::two');
      const out = await call(b, 'engine::workers::list', {});
      expect(Object.keys(out)).toEqual(['workers']);
      const workers: Any[] = out.workers;
      const alpha = workers.find((w) => w.name === 'wl-alpha');
      expect(alpha).toEqual({
        name: 'wl-alpha',
        description: null,
        version: '0.22.1',
        id: aId,
        runtime: 'node',
        os: expect.stringContaining(process.platform),
        status: 'connected',
        function_count: 2,
        connected_at_ms: expect.any(Number),
        active_invocations: 0,
        isolation: null,
        ip_address: '127.0.0.1',
        namespace: 'default',
      });
      expect(workers.find((w) => w.name === 'wl-beta')).toMatchObject({
        id: bId,
        function_count: 0,
        status: 'connected',
        runtime: 'node',
      });

      const module = workers.find((w) => w.name === 'iii-engine-functions');
      expect(module).toEqual({
        name: 'iii-engine-functions',
        description: null,
        version: expect.any(String),
        id: 'iii-engine-functions',
        runtime: 'engine',
        os: null,
        status: 'available',
        function_count: expect.any(Number),
        connected_at_ms: expect.any(Number),
        active_invocations: 0,
        isolation: 'in-process',
        ip_address: null,
        namespace: 'default',
      });
      expect(module.function_count).toBeGreaterThanOrEqual(12);
      expect(workers.find((w) => w.name === 'iii-observability')).toMatchObject({
        runtime: 'engine',
        status: 'available',
        isolation: 'in-process',
      });

      // Sorted by name (or id), then id.
      const keys = workers.map((w) => String(w.name ?? w.id));
      expect(keys).toEqual([...keys].sort());
    });

    test('list (ours): a connection that never reported metadata is listed too', async () => {
      const w = t.worker('observer');
      await workerId(t, 'observer');
      const raw = new WebSocket(t.url);
      try {
        const registered = await new Promise<Any>((resolve, reject) => {
          raw.once('message', (data) => resolve(JSON.parse(data.toString())));
          raw.once('error', reject);
        });
        expect(registered.type).toBe('workerregistered');
        const workers: Any[] = (await call(w, 'engine::workers::list', { status: 'connected' })).workers;
        expect(workers.find((x) => x.id === registered.worker_id)).toMatchObject({
          id: registered.worker_id,
          name: null,
          runtime: 'unknown',
          status: 'connected',
          function_count: 0,
          ip_address: '127.0.0.1',
          namespace: 'default',
        });
      } finally {
        raw.close();
      }
    });

    test('list: active_invocations counts calls a worker executes and calls it waits on', async () => {
      const caller = t.worker('ai-caller');
      const callee = t.worker('ai-callee');
      const observer = t.worker('ai-observer');
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started = false;
      callee.registerFunction('ai::slow', async () => {
        started = true;
        await gate;
        return { done: true };
      });
      await functionRegistered(t.engine, 'ai::slow');
      await Promise.all([workerId(t, 'ai-caller'), workerId(t, 'ai-callee'), workerId(t, 'ai-observer')]);
      const pending = call(caller, 'ai::slow', {});
      try {
        await waitFor(() => started, 'slow call running');
        const workers: Any[] = (await call(observer, 'engine::workers::list', { runtime: 'node' })).workers;
        expect(workers.find((w) => w.name === 'ai-callee').active_invocations).toBe(1);
        expect(workers.find((w) => w.name === 'ai-caller').active_invocations).toBe(1);
      } finally {
        release();
      }
      await expect(pending).resolves.toEqual({ done: true });
    });

    test('list filters: runtime, status, search (case-insensitive substring of name)', async () => {
      const a = t.worker('Filter-Alpha');
      t.worker('filter-beta');
      t.worker('other');
      await Promise.all([workerId(t, 'Filter-Alpha'), workerId(t, 'filter-beta'), workerId(t, 'other')]);
      const names = async (payload: object) =>
        ((await call(a, 'engine::workers::list', payload)).workers as Any[]).map((w) => w.name);
      expect(await names({ runtime: 'node' })).toEqual(['Filter-Alpha', 'filter-beta', 'other']);
      const engineNames = await names({ runtime: 'engine' });
      expect(engineNames).toEqual(expect.arrayContaining(['iii-engine-functions', 'iii-observability']));
      expect(await names({ status: 'available' })).toEqual(engineNames);
      expect(await names({ status: 'connected' })).toEqual(['Filter-Alpha', 'filter-beta', 'other']);
      expect(await names({ search: 'FILTER' })).toEqual(['Filter-Alpha', 'filter-beta']);
      expect(await names({ search: 'filter', runtime: 'engine' })).toEqual([]);
    });

    test('info: a connected worker by name with its functions, trigger types and bindings', async () => {
      const w = t.worker('info-worker', { workerDescription: 'does things' });
      const other = t.worker('info-other');
      const { active } = provideType(w, { id: 'iw::type', description: 'IW type' });
      w.registerFunction('iw::b', async () => null, { description: 'B' });
      w.registerFunction('iw::a', async () => null);
      other.registerFunction('io::fn', async () => null);
      other.registerTrigger({ type: 'iw::type', function_id: 'iw::a', config: { k: 1 } });
      other.registerTrigger({ type: 'iw::type', function_id: 'io::fn', config: { k: 2 } });
      const id = await workerId(t, 'info-worker');
      await workerId(t, 'info-other');
      await waitFor(() => active.size === 2, 'bindings delivered');
      const bindingOnA = [...active.values()].find((b) => b.function_id === 'iw::a');
      const out = await call(other, 'engine::workers::info', { name: 'info-worker' });
      expect(out).toEqual({
        worker: {
          name: 'info-worker',
          description: 'does things',
          version: '0.22.1',
          id,
          runtime: 'node',
          os: expect.any(String),
          status: 'connected',
          function_count: 2,
          connected_at_ms: expect.any(Number),
          active_invocations: 0,
          isolation: null,
          ip_address: '127.0.0.1',
          namespace: 'default',
          pid: process.pid,
          internal: false,
        },
        functions: [
          { function_id: 'iw::a', namespace: 'default', worker_name: 'info-worker' },
          { function_id: 'iw::b', namespace: 'default', worker_name: 'info-worker', description: 'B' },
        ],
        trigger_types: [{ id: 'iw::type', namespace: 'default', worker_name: 'info-worker', description: 'IW type' }],
        registered_triggers: [
          {
            id: bindingOnA.id,
            trigger_type: 'iw::type',
            function_id: 'iw::a',
            namespace: 'default',
            worker_name: 'info-worker',
            config: { k: 1 },
            config_summary: '{"k":1}',
          },
        ],
      });
    });

    test('info: an in-process module by name', async () => {
      const w = t.worker('asker');
      await workerId(t, 'asker');
      const out = await call(w, 'engine::workers::info', { name: 'iii-engine-functions' });
      expect(out.worker).toMatchObject({
        name: 'iii-engine-functions',
        runtime: 'engine',
        status: 'available',
        isolation: 'in-process',
        internal: true,
      });
      const ids: string[] = out.functions.map((f: Any) => f.function_id);
      expect(ids).toEqual(
        expect.arrayContaining(['engine::functions::list', 'engine::workers::register', 'engine::register_trigger']),
      );
      expect(ids).toEqual([...ids].sort());
      expect(out.trigger_types.map((x: Any) => x.id)).toEqual([
        'engine::functions-available',
        'engine::workers-available',
      ]);
      expect(out.registered_triggers).toEqual([]);
    });

    test('info by worker_id answers the same worker as by name', async () => {
      const w = t.worker('by-id');
      const id = await workerId(t, 'by-id');
      const byId = await call(w, 'engine::workers::info', { worker_id: id });
      expect(byId).toEqual(await call(w, 'engine::workers::info', { name: 'by-id' }));
      expect(byId.worker).toMatchObject({ id, name: 'by-id' });
      expect(byId.worker.latest_metrics).toBeUndefined(); // OTel is off in these workers: no MTRC frames
      const err = await failure(w, 'engine::workers::info', { worker_id: 'no-such-id' });
      expect(err).toMatchObject({ code: 'NOT_FOUND' });
    });

    test('info of an unknown name: NOT_FOUND', async () => {
      const w = t.worker('asker');
      await workerId(t, 'asker');
      const err = await failure(w, 'engine::workers::info', { name: 'ghost' });
      expect(err).toMatchObject({ code: 'NOT_FOUND', message: "NOT_FOUND: Worker 'ghost' is not connected." });
    });

    test('register: name and description are sanitized (control chars and bidi removed, cut to 280, trimmed; empty keeps previous)', async () => {
      const w = t.worker('plain-name');
      const id = await workerId(t, 'plain-name');
      const nasty = '  \u0000evil\u001b[31m\u202Eworker\u2066x\u2069\u2028\u2029\u007f\u0085 ';
      const ack = await call(w, 'engine::workers::register', {
        runtime: 'node',
        version: '0.22.1',
        name: nasty,
        description: '\tdesc\u202Dription\n',
      });
      expect(ack).toEqual({ success: true });
      const listed = async () =>
        ((await call(w, 'engine::workers::list', { runtime: 'node' })).workers as Any[]).find((x) => x.id === id);
      expect(await listed()).toMatchObject({ name: 'evil[31mworkerx', description: 'description' });

      await call(w, 'engine::workers::register', { runtime: 'node', version: '0.22.1', name: 'n'.repeat(300) });
      const long = await listed();
      expect(long.name).toBe('n'.repeat(280));
      expect(long.description).toBe('description');

      // Nothing left after sanitizing: the previous name stays.
      await call(w, 'engine::workers::register', { runtime: 'node', version: '0.22.1', name: '\u202E\u0007  ' });
      expect((await listed()).name).toBe('n'.repeat(280));
    });

    test('register: pid must be a u32 (deserialization_error otherwise)', async () => {
      const w = t.worker('pid-check');
      await workerId(t, 'pid-check');
      for (const pid of [-1, 1.5, 2 ** 32]) {
        const err = await failure(w, 'engine::workers::register', { runtime: 'node', pid });
        expect({ pid, code: err.code }).toEqual({ pid, code: 'deserialization_error' });
      }
      expect(await call(w, 'engine::workers::register', { runtime: 'node', pid: 4242 })).toEqual({ success: true });
    });

    test('the 280 limit counts characters (code points), never splitting a surrogate pair', async () => {
      const w = t.worker('emoji-name');
      const id = await workerId(t, 'emoji-name');
      await call(w, 'engine::workers::register', { runtime: 'node', version: '0.22.1', name: `a${'😀'.repeat(300)}` });
      const me = ((await call(w, 'engine::workers::list', { runtime: 'node' })).workers as Any[]).find(
        (x) => x.id === id,
      );
      expect(Array.from(me.name as string)).toHaveLength(280);
      expect(me.name).toBe(`a${'😀'.repeat(279)}`);
    });
  });

  // ---------------------------------------------------------------- engine::register_trigger / unregister_trigger

  describe('engine::register_trigger / engine::unregister_trigger', () => {
    test('creates a durable binding that survives the caller and returns {id}', async () => {
      const caller = t.worker('durable-caller');
      const target = t.worker('durable-target');
      const events: Any[] = [];
      target.registerFunction('durable::on_worker', async (data: unknown) => {
        events.push(data);
        return null;
      });
      await functionRegistered(t.engine, 'durable::on_worker');
      const callerId = await workerId(t, 'durable-caller');
      await workerId(t, 'durable-target');
      const out = await call(caller, 'engine::register_trigger', {
        trigger_type: 'engine::workers-available',
        function_id: 'durable::on_worker',
        config: { a: 1 },
      });
      expect(Object.keys(out)).toEqual(['id']);
      expect(out.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

      await caller.shutdown();
      await waitFor(
        () => events.some((e) => e.event === 'worker_disconnected' && e.worker_id === callerId),
        'the binding fired after the caller left',
      );
      const info = await call(target, 'engine::registered-triggers::info', { id: out.id });
      expect(info).toMatchObject({
        id: out.id,
        trigger_type: 'engine::workers-available',
        function_id: 'durable::on_worker',
        config: { a: 1 },
      });
    });

    test('a worker provider that rejects the binding: trigger_registration_failed with "<code>: <message>"', async () => {
      const p = t.worker('rejecter');
      const caller = t.worker('rej-caller');
      provideType(p, { id: 'rej::type', description: 'rejects everything' }, { reject: 'config is unacceptable' });
      await workerId(t, 'rejecter');
      await workerId(t, 'rej-caller');
      await waitFor(() => t.engine.registry.triggerType('rej::type'), 'type registered');
      const started = Date.now();
      const err = await failure(caller, 'engine::register_trigger', {
        trigger_type: 'rej::type',
        function_id: 'any::fn',
        config: {},
      });
      expect(err.code).toBe('trigger_registration_failed');
      // The SDK prefixes the code again: "<code>: <engine message>", the engine message being "<code>: <message>".
      expect(err.message).toBe('trigger_registration_failed: trigger_registration_failed: config is unacceptable');
      expect(Date.now() - started).toBeLessThan(5000);
    });

    test('an unknown trigger type parks the binding and still returns {id}; unregister removes it', async () => {
      const caller = t.worker('parker');
      await workerId(t, 'parker');
      const out = await call(caller, 'engine::register_trigger', { trigger_type: 'not::yet', function_id: 'some::fn' });
      expect(out).toEqual({ id: expect.any(String) });
      expect(t.engine.registry.trigger(out.id)).toMatchObject({ state: 'parked', config: null });
      expect((await call(caller, 'engine::registered-triggers::list', {})).registered_triggers).toEqual([]);
      expect(await call(caller, 'engine::unregister_trigger', { id: out.id })).toEqual({ removed: true });
      expect(t.engine.registry.trigger(out.id)).toBeUndefined();
    });

    test('unregister_trigger answers {removed:true} then {removed:false}, and tells the provider', async () => {
      const p = t.worker('unreg-prov');
      const caller = t.worker('unreg-caller');
      const { active } = provideType(p, { id: 'ur::type', description: 'ur' });
      await workerId(t, 'unreg-prov');
      await workerId(t, 'unreg-caller');
      await waitFor(() => t.engine.registry.triggerType('ur::type'), 'type registered');
      const { id } = await call(caller, 'engine::register_trigger', {
        trigger_type: 'ur::type',
        function_id: 'ur::fn',
        config: { n: 1 },
        metadata: { m: true },
      });
      expect(active.get(id)).toMatchObject({ id, function_id: 'ur::fn', config: { n: 1 }, metadata: { m: true } });
      expect(await call(caller, 'engine::unregister_trigger', { id })).toEqual({ removed: true });
      await waitFor(() => !active.has(id), 'provider told');
      expect(await call(caller, 'engine::unregister_trigger', { id })).toEqual({ removed: false });
      expect(
        await call(caller, 'engine::unregister_trigger', { id: 'never-existed', trigger_type: 'ur::type' }),
      ).toEqual({ removed: false });
    });
  });

  // ---------------------------------------------------------------- engine::log::*

  describe('engine::log::*', () => {
    test('every level accepts a record and resolves without a result', async () => {
      const w = t.worker('logger');
      await workerId(t, 'logger');
      for (const level of ['info', 'warn', 'error', 'debug', 'trace']) {
        await expect(call(w, `engine::log::${level}`, { message: `hello ${level}` })).resolves.toBeUndefined();
      }
      await expect(
        call(w, 'engine::log::info', {
          message: 'with extras',
          data: { k: 1 },
          trace_id: 'abc',
          span_id: 'def',
          service_name: 'svc',
        }),
      ).resolves.toBeUndefined();
    });

    test('a record without message: deserialization_error', async () => {
      const w = t.worker('logger');
      await workerId(t, 'logger');
      for (const level of ['info', 'error']) {
        const err = await failure(w, `engine::log::${level}`, { data: { k: 1 } });
        expect(err.code).toBe('deserialization_error');
        expect(err.message).toContain(`Failed to deserialize input for engine::log::${level}`);
      }
    });
  });

  // ---------------------------------------------------------------- engine trigger types

  describe('engine trigger types', () => {
    test('engine::workers-available: worker_connected, worker_metadata_updated, worker_disconnected', async () => {
      const listener = t.worker('wa-listener');
      const events: Any[] = [];
      listener.registerFunction('watch::workers', async (data: unknown) => {
        events.push(data);
        return null;
      });
      listener.registerTrigger({ type: 'engine::workers-available', function_id: 'watch::workers', config: {} });
      await workerId(t, 'wa-listener');
      await waitFor(() => liveBindings(t, 'engine::workers-available') === 1, 'binding live');

      const newcomer = t.worker('wa-newcomer');
      const id = await workerId(t, 'wa-newcomer');
      const about = () => events.filter((e) => e.worker_id === id);
      await waitFor(() => about().length >= 2, 'connected + metadata events');
      expect(about().slice(0, 2)).toEqual([
        { event: 'worker_connected', worker_id: id },
        { event: 'worker_metadata_updated', worker_id: id },
      ]);

      await newcomer.shutdown();
      await waitFor(() => about().some((e) => e.event === 'worker_disconnected'), 'disconnected event');
      expect(about()).toEqual([
        { event: 'worker_connected', worker_id: id },
        { event: 'worker_metadata_updated', worker_id: id },
        { event: 'worker_disconnected', worker_id: id },
      ]);
    });

    test('engine::functions-available (ours: debounced ~100 ms): fires on a new function id, not when the id set is unchanged', async () => {
      const listener = t.worker('fa-listener');
      const events: Any[] = [];
      listener.registerFunction('watch::functions', async (data: unknown) => {
        events.push(data);
        return null;
      });
      listener.registerTrigger({ type: 'engine::functions-available', function_id: 'watch::functions', config: {} });
      await workerId(t, 'fa-listener');
      await waitFor(() => liveBindings(t, 'engine::functions-available') === 1, 'binding live');
      await sleep(400); // let the listener's own registration settle
      events.length = 0;

      const producer = t.worker('fa-producer');
      const started = Date.now();
      producer.registerFunction('fresh::fn', async () => null, { description: 'fresh' });
      await waitFor(() => events.length >= 1, 'functions_changed event', 3000);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(events).toHaveLength(1);
      const event = events[0];
      expect(Object.keys(event).sort()).toEqual(['event', 'functions']);
      expect(event.event).toBe('functions_changed');
      const ids: string[] = event.functions.map((f: Any) => f.function_id);
      expect(ids).toEqual(expect.arrayContaining(['fresh::fn', 'watch::functions', 'engine::functions::list']));
      expect(event.functions.find((f: Any) => f.function_id === 'fresh::fn')).toMatchObject({
        function_id: 'fresh::fn',
        description: 'fresh',
      });

      // Another worker registering the same id leaves the set of ids unchanged: no event.
      await workerId(t, 'fa-producer');
      const second = t.worker('fa-second');
      second.registerFunction('fresh::fn', async () => null, { description: 'changed description' });
      await workerId(t, 'fa-second');
      await sleep(600);
      expect(events).toHaveLength(1);

      // Removing an id changes the set again.
      await producer.shutdown();
      await second.shutdown();
      await waitFor(() => events.length >= 2, 'event after removal', 3000);
      expect(events[events.length - 1].functions.map((f: Any) => f.function_id)).not.toContain('fresh::fn');
    });
  });
});
