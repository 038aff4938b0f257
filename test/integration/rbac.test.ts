import * as net from 'node:net';
import { registerWorker, TriggerAction, type IIIClient } from 'iii-sdk';
import { createChannel } from 'iii-sdk/helpers';
import type { WorkerListenerConfig } from '../../src/config/types';
import type { Engine } from '../../src/engine/engine';
import { createEngine } from '../../src/create-engine';
import { silentLogger } from '../../src/observability/logger';
import { call, failure, type Any } from '../support/calls';
import { functionRegistered, sleep, testConfig, waitFor } from '../support/engine';
import { RawClient } from '../support/raw-client';

/**
 * Worker access control as the SDK's CI fixture sets it up (iii-protocol.md §1.1, §3.7): one
 * open listener and one with RBAC and a middleware. The auth function, the middleware, the hooks
 * and the target functions live on an "admin" worker on the open port.
 */

/** `handshake_timeout_ms` of the RBAC port: the deadline of its auth function and hooks. */
const DEADLINE_MS = 1500;

/** What the auth function answers, by the `x-role` header. */
const ROLES: Record<string, Any> = {
  plain: { allowed_functions: ['engine::functions::list', 'engine::functions::info'], context: { role: 'plain' } },
  power: {
    allowed_functions: ['secret::allowed'],
    forbidden_functions: ['public::blocked'],
    allow_trigger_type_registration: true,
    context: { role: 'power' },
  },
  tenant: {
    function_registration_prefix: 'tenant-a',
    allowed_functions: ['engine::register_trigger'],
    context: { role: 'tenant' },
  },
  limited: { allowed_trigger_types: ['subscribe'], allow_function_registration: false },
  'bad-shape': { allowed_functions: 'everything' },
};

let engine: Engine;
let admin: IIIClient;
let rbacUrl: string;
let rbacPort: number;
const clients: IIIClient[] = [];
const raws: RawClient[] = [];
const authInputs: Any[] = [];
const middlewareInputs: Array<{ input: Any; metadata: Any }> = [];
const hookInputs: Record<'fn' | 'trigger' | 'type', Any[]> = { fn: [], trigger: [], type: [] };
const echoed: Any[] = [];
const tenantCalls: Any[] = [];
/** Pending forever: what a hung auth function or hook "answers". */
const never = new Promise<never>(() => undefined);

beforeAll(async () => {
  const config = testConfig();
  const open = config.listeners[0];
  const rbac: WorkerListenerConfig = {
    ...open,
    instanceId: 'iii-worker-manager#1',
    port: 0,
    handshakeTimeoutMs: DEADLINE_MS,
    middlewareFunctionId: 'mw::gate',
    rbac: {
      auth_function_id: 'auth::check',
      expose_functions: [
        'match("public::*")',
        { metadata: { exposed: true } },
        { metadata: { tier: 'match("gold*")' } },
      ],
      on_function_registration_function_id: 'hook::fn',
      on_trigger_registration_function_id: 'hook::trigger',
      on_trigger_type_registration_function_id: 'hook::type',
    },
  };
  engine = createEngine({ ...config, listeners: [open, rbac] }, { logger: silentLogger });
  await engine.start();
  rbacPort = engine.ports[1]!;
  rbacUrl = `ws://127.0.0.1:${rbacPort}`;
  admin = registerWorker(`ws://127.0.0.1:${engine.port}`, {
    workerName: 'admin',
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  clients.push(admin);

  admin.registerFunction('auth::check', async (input: Any) => {
    authInputs.push(input);
    const role = input.headers['x-role'];
    if (role === 'deny') throw new Error('bad credentials');
    if (role === 'hang') return never;
    if (role === 'slow') return sleep(300).then(() => ROLES['plain']);
    return ROLES[role];
  });
  admin.registerFunction('mw::gate', async (input: Any, metadata: Any) => {
    middlewareInputs.push({ input, metadata });
    if (input.function_id === 'public::mw-error') throw new Error('stopped by middleware');
    if (input.action?.type === 'enqueue') return { middleware_saw: 'enqueue', queue: input.action.queue };
    const result = await admin.trigger({
      function_id: input.function_id,
      payload: input.payload,
      action: input.action ?? undefined,
    });
    return { via_middleware: true, result: result ?? null };
  });
  admin.registerFunction('hook::fn', async (input: Any) => {
    hookInputs.fn.push(input);
    if (input.function_id === 'hooked::deny') return null;
    if (input.function_id === 'hooked::throw') throw new Error('no such luck');
    if (input.function_id === 'hooked::hang') return never;
    if (input.function_id === 'hooked::rename')
      return { function_id: 'hooked::renamed', description: 'by hook', metadata: { stamped: true } };
    return {};
  });
  admin.registerFunction('hook::trigger', async (input: Any) => {
    hookInputs.trigger.push(input);
    if (input.config?.deny) return null;
    if (input.config?.remap) return { config: { topic: 'remapped' } };
    return {};
  });
  admin.registerFunction('hook::type', async (input: Any) => {
    hookInputs.type.push(input);
    if (input.trigger_type_id === 'tt::deny') return 'nope';
    if (input.trigger_type_id === 'tt::rename')
      return { trigger_type_id: 'tt::renamed', description: 'renamed by hook' };
    return {};
  });
  admin.registerFunction('public::echo', async (input: Any) => (echoed.push(input), input));
  admin.registerFunction('public::blocked', async () => 'blocked-ran');
  admin.registerFunction('secret::allowed', async () => 'secret-ok');
  admin.registerFunction('secret::other', async () => 'other-ran');
  admin.registerFunction('meta::exposed', async () => 'exposed-ok', { metadata: { exposed: true } });
  admin.registerFunction('meta::gold', async () => 'gold-ok', { metadata: { tier: 'gold-plus' } });
  admin.registerFunction('meta::silver', async () => 'silver-ran', { metadata: { tier: 'silver' } });
  for (const id of [
    'auth::check',
    'mw::gate',
    'hook::fn',
    'hook::trigger',
    'hook::type',
    'public::echo',
    'meta::silver',
  ])
    await functionRegistered(engine, id);
});

afterAll(async () => {
  for (const raw of raws) raw.close();
  await Promise.all(clients.map((c) => c.shutdown().catch(() => undefined)));
  await engine.stop();
});

/** An iii-sdk worker on the RBAC port, authenticated as `role`. */
function rbacWorker(role: string): IIIClient {
  const client = registerWorker(rbacUrl, {
    workerName: `rbac-${role}`,
    headers: { 'x-role': role },
    enableMetricsReporting: false,
    otel: { enabled: false },
  });
  clients.push(client);
  return client;
}

async function rawClient(role: string): Promise<RawClient> {
  const raw = await RawClient.connect(rbacUrl, { headers: { 'x-role': role } });
  raws.push(raw);
  return raw;
}

function connectedWorkers(): number {
  return [...engine.registry.workers()].filter((w) => w.kind === 'worker').length;
}

function errorFrame(raw: RawClient, pattern: RegExp, timeoutMs = 3000): Promise<Any> {
  return raw.next((m) => m.type === 'error' && pattern.test((m as Any).error.message), timeoutMs);
}

describe('authentication', () => {
  it('calls the auth function with lower-cased headers (the last one wins), the raw query and the peer address', async () => {
    const socket = net.connect(rbacPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      'GET /?a=1&a=2&enc=%41&flag HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Role: Plain\r\nX-Dup: first\r\nX-Dup: second\r\n\r\n',
    );
    const input = await waitFor(
      () => authInputs.find((i) => i.headers['x-dup'] !== undefined),
      'the auth function to be called',
    );
    socket.destroy();
    expect(input.headers).toMatchObject({ 'x-dup': 'second', 'x-role': 'Plain', host: 'x' });
    expect(input.query_params).toEqual({ a: ['1', '2'], enc: ['%41'], flag: [''] });
    expect(input.ip_address).toBe('127.0.0.1');
  });

  it('refuses a connection the auth function rejects with an AUTH_ERROR frame and a close, never registering it', async () => {
    const before = connectedWorkers();
    const raw = await rawClient('deny');
    const frame = await raw.next((m) => m.type === 'error');
    expect(frame).toEqual({ type: 'error', error: { code: 'AUTH_ERROR', message: 'bad credentials' } });
    expect((await raw.waitClosed()).code).toBe(1008);
    expect(raw.received.map((m) => m.type)).toEqual(['error']);
    expect(connectedWorkers()).toBe(before);
  });

  it('refuses with AUTH_ERROR when the auth function answers nothing or the wrong shape', async () => {
    const nothing = await rawClient('nobody-knows-me');
    expect(await nothing.next((m) => m.type === 'error')).toMatchObject({
      error: { code: 'AUTH_ERROR', message: 'auth function returned no result' },
    });
    const bad = await rawClient('bad-shape');
    const frame = (await bad.next((m) => m.type === 'error')) as Any;
    expect(frame.error.message).toBe(
      'auth function result: allowed_functions: expected a list of strings, got "everything"',
    );
  });

  it('gives a hung auth function handshake_timeout_ms, then refuses the connection', async () => {
    const started = Date.now();
    const raw = await rawClient('hang');
    await sleep(200);
    expect(raw.received).toEqual([]);
    const frame = (await raw.next((m) => m.type === 'error', DEADLINE_MS + 3000)) as Any;
    expect(frame.error).toEqual({
      code: 'AUTH_ERROR',
      message: `auth function auth::check did not answer within ${DEADLINE_MS} ms (handshake_timeout_ms)`,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
    await raw.waitClosed();
  });

  it('holds the frames sent during authentication and processes them, in order, after workerregistered', async () => {
    const raw = await rawClient('slow');
    raw.send({ type: 'registerfunction', id: 'held::fn' });
    raw.send({ type: 'ping' });
    await sleep(100);
    expect(raw.received).toEqual([]);
    expect(engine.registry.pool('held::fn')).toHaveLength(0);
    await raw.next((m) => m.type === 'pong');
    const { worker_id } = await raw.registered();
    expect(raw.received.map((m) => m.type)).toEqual(['workerregistered', 'pong']);
    await waitFor(() => engine.registry.pool('held::fn')[0]?.workerId === worker_id, 'the held registration');
  });

  it('authenticates /otel telemetry sockets the same way, ingesting what an allowed one held meanwhile', async () => {
    const denied = await RawClient.connect(`${rbacUrl}/otel`, { headers: { 'x-role': 'deny' } });
    raws.push(denied);
    expect(await denied.next((m) => m.type === 'error')).toEqual({
      type: 'error',
      error: { code: 'AUTH_ERROR', message: 'bad credentials' },
    });
    expect((await denied.waitClosed()).code).toBe(1008);
    const before = connectedWorkers();
    const ingested = new Promise<string>((resolve) =>
      engine.events.once('telemetry', (signal: string) => resolve(signal)),
    );
    const allowed = await RawClient.connect(`${rbacUrl}/otel`, { headers: { 'x-role': 'slow' } });
    raws.push(allowed);
    allowed.socket.send(Buffer.from('LOGS{"resourceLogs":[]}'), { binary: true });
    await expect(ingested).resolves.toBe('LOGS');
    expect(allowed.received).toEqual([]);
    expect(connectedWorkers()).toBe(before);
  });

  it('closes a connection that sends more than 10000 frames before it is let in (1008)', async () => {
    const raw = await rawClient('hang');
    for (let i = 0; i <= 10_000; i++) raw.send('{"type":"ping"}');
    expect((await raw.waitClosed()).code).toBe(1008);
  });
});

describe('calls from an RBAC session', () => {
  it('allows allowed_functions and answers FORBIDDEN with the original messages otherwise', async () => {
    const power = rbacWorker('power');
    await expect(call(power, 'secret::allowed', {})).resolves.toEqual({ via_middleware: true, result: 'secret-ok' });
    const other = await failure(power, 'secret::other', {});
    expect({ code: other.code, message: other.message }).toEqual({
      code: 'FORBIDDEN',
      message: "FORBIDDEN: function 'secret::other' not allowed (add to rbac.expose_functions)",
    });
    const blocked = await failure(power, 'public::blocked', {});
    expect(blocked.message).toBe(
      "FORBIDDEN: function 'public::blocked' not allowed (remove from rbac.forbidden_functions)",
    );
  });

  it('allows what expose_functions matches, by match() pattern and by metadata', async () => {
    const plain = rbacWorker('plain');
    await expect(call(plain, 'public::echo', { n: 0 })).resolves.toMatchObject({
      via_middleware: true,
      result: { n: 0 },
    });
    await expect(call(plain, 'meta::exposed', {})).resolves.toEqual({ via_middleware: true, result: 'exposed-ok' });
    await expect(call(plain, 'meta::gold', {})).resolves.toEqual({ via_middleware: true, result: 'gold-ok' });
    expect((await failure(plain, 'meta::silver', {})).code).toBe('FORBIDDEN');
    expect((await failure(plain, 'secret::allowed', {})).code).toBe('FORBIDDEN');
  });

  it('lets every session call the infrastructure functions its lists do not name', async () => {
    const plain = rbacWorker('plain');
    const channel = await createChannel(plain);
    expect(channel.readerRef.channel_id).toEqual(expect.any(String));
    await expect(call(plain, 'engine::log::info', { message: 'hello from rbac' })).resolves.not.toBeInstanceOf(Error);
    // The SDK's own engine::workers::register went through: the worker has its name.
    await waitFor(
      () => [...engine.registry.workers()].some((w) => w.name === 'rbac-plain'),
      'the SDK metadata registration',
    );
  });

  it('filters engine::functions::list and ::info by the session, without the middleware', async () => {
    const plain = rbacWorker('plain');
    const ours = (list: Any) =>
      list.functions.map((f: Any) => f.function_id).filter((id: string) => /^(public|secret|meta)::/.test(id));
    const calls = middlewareInputs.length;
    expect(ours(await call(plain, 'engine::functions::list', {}))).toEqual([
      'meta::exposed',
      'meta::gold',
      'public::blocked',
      'public::echo',
    ]);
    expect(ours(await call(admin, 'engine::functions::list', {}))).toEqual([
      'meta::exposed',
      'meta::gold',
      'meta::silver',
      'public::blocked',
      'public::echo',
      'secret::allowed',
      'secret::other',
    ]);
    const single = await failure(plain, 'engine::functions::info', { function_id: 'secret::other' });
    expect(single.message).toBe("FORBIDDEN: Function 'secret::other' is not visible to this session.");
    const batch = await call(plain, 'engine::functions::info', {
      function_ids: ['public::echo', 'secret::other', 'public::nope'],
    });
    expect(batch.functions.map((f: Any) => f.error ?? f.function_id)).toEqual([
      'public::echo',
      'forbidden',
      'not_found',
    ]);
    expect(middlewareInputs.slice(calls).filter((m) => m.input.function_id.startsWith('engine::'))).toEqual([]);
  });
});

describe('the middleware', () => {
  it("gets {function_id, payload, action, context} and the caller metadata; its answer is the caller's", async () => {
    const plain = rbacWorker('plain');
    const result = await plain.trigger({ function_id: 'public::echo', payload: { n: 1 }, metadata: { trace: 'm1' } });
    expect(result).toMatchObject({ via_middleware: true, result: { n: 1 } });
    const seen = middlewareInputs.find((m) => m.input.payload?.n === 1)!;
    expect(seen.input).toEqual({
      function_id: 'public::echo',
      payload: { n: 1 },
      action: null,
      context: { role: 'plain' },
    });
    expect(seen.metadata).toEqual({ trace: 'm1' });
    await expect(call(plain, 'public::mw-error', {})).rejects.toThrow('stopped by middleware');
  });

  it('takes void and enqueue calls too', async () => {
    const plain = rbacWorker('plain');
    await plain.trigger({ function_id: 'public::echo', payload: { n: 2 }, action: TriggerAction.Void() });
    const seen = await waitFor(
      () => middlewareInputs.find((m) => m.input.payload?.n === 2),
      'the middleware to get the void call',
    );
    expect(seen.input.action).toEqual({ type: 'void' });
    await waitFor(() => echoed.some((e) => e.n === 2), 'the middleware to make the void call');
    const queued = await plain.trigger({
      function_id: 'public::echo',
      payload: { n: 3 },
      action: TriggerAction.Enqueue({ queue: 'jobs' }),
    });
    expect(queued).toEqual({ middleware_saw: 'enqueue', queue: 'jobs' });
  });
});

describe('registration', () => {
  it('runs the function hook with the id, description, metadata and context; an object approves and remaps', async () => {
    const raw = await rawClient('plain');
    raw.send({ type: 'registerfunction', id: 'hooked::rename', description: 'original' });
    const fn = await waitFor(() => engine.registry.function('hooked::renamed'), 'the remapped function');
    expect(fn).toMatchObject({ description: 'by hook', metadata: { stamped: true } });
    expect(engine.registry.function('hooked::rename')).toBeUndefined();
    expect(hookInputs.fn.find((i) => i.function_id === 'hooked::rename')).toEqual({
      function_id: 'hooked::rename',
      description: 'original',
      metadata: null,
      context: { role: 'plain' },
    });
  });

  it('refuses a function the hook denies, fails or does not answer in time, with a FORBIDDEN error frame', async () => {
    const raw = await rawClient('plain');
    for (const id of ['hooked::deny', 'hooked::throw', 'hooked::hang']) raw.send({ type: 'registerfunction', id });
    expect((await errorFrame(raw, /hooked::deny/)).error).toEqual({
      code: 'FORBIDDEN',
      message:
        "Function registration 'hooked::deny' refused: hook hook::fn denied it (answered nothing, an object approves)",
    });
    expect((await errorFrame(raw, /hooked::throw/)).error.message).toMatch(
      /hook hook::fn failed \(invocation_failed: no such luck\)/,
    );
    expect((await errorFrame(raw, /hooked::hang/, DEADLINE_MS + 3000)).error.message).toMatch(
      /hook hook::fn failed \(invocation_timeout: .*1500 ms/,
    );
    for (const id of ['hooked::deny', 'hooked::throw', 'hooked::hang'])
      expect(engine.registry.function(id)).toBeUndefined();
  });

  it("refuses what the session's gates forbid: functions, trigger types, and triggers of types not allowed", async () => {
    const raw = await rawClient('limited');
    raw.send({ type: 'registerfunction', id: 'public::limited' });
    raw.send({ type: 'registertriggertype', id: 'limited::type', description: 'x' });
    raw.send({
      type: 'registertrigger',
      id: 'limited-cron',
      trigger_type: 'cron',
      function_id: 'public::echo',
      config: { expression: '* * * * * *' },
    });
    raw.send({
      type: 'registertrigger',
      id: 'limited-sub',
      trigger_type: 'subscribe',
      function_id: 'public::echo',
      config: { topic: 'limited' },
    });
    expect((await errorFrame(raw, /public::limited/)).error.message).toBe(
      "Function registration 'public::limited' refused: this session may not register functions (allow_function_registration is false)",
    );
    expect((await errorFrame(raw, /limited::type/)).error.message).toMatch(/allow_trigger_type_registration is false/);
    const refused = (await raw.next((m) => m.type === 'triggerregistrationresult')) as Any;
    expect(refused).toEqual({
      type: 'triggerregistrationresult',
      id: 'limited-cron',
      trigger_type: 'cron',
      function_id: 'public::echo',
      error: {
        code: 'FORBIDDEN',
        message:
          "Trigger 'limited-cron' (cron) refused: trigger type 'cron' is not in this session's allowed_trigger_types",
      },
    });
    await waitFor(() => engine.registry.trigger('limited-sub'), 'the allowed subscribe binding');
    expect(engine.registry.trigger('limited-cron')).toBeUndefined();
    expect(engine.registry.pool('public::limited')).toHaveLength(0);
    expect(engine.registry.triggerType('limited::type')).toBeUndefined();
  });

  it('runs the trigger hook: an object approves and remaps, anything else refuses with a triggerregistrationresult', async () => {
    const raw = await rawClient('power');
    raw.send({
      type: 'registertrigger',
      id: 'trig-deny',
      trigger_type: 'subscribe',
      function_id: 'public::echo',
      config: { topic: 'x', deny: true },
    });
    raw.send({
      type: 'registertrigger',
      id: 'trig-remap',
      trigger_type: 'subscribe',
      function_id: 'public::echo',
      config: { topic: 'y', remap: true },
    });
    const refused = (await raw.next((m) => m.type === 'triggerregistrationresult')) as Any;
    expect(refused.id).toBe('trig-deny');
    expect(refused.error).toEqual({
      code: 'FORBIDDEN',
      message:
        "Trigger 'trig-deny' (subscribe) refused: hook hook::trigger denied it (answered nothing, an object approves)",
    });
    const remapped = await waitFor(() => engine.registry.trigger('trig-remap'), 'the remapped binding');
    expect(remapped.config).toEqual({ topic: 'remapped' });
    expect(hookInputs.trigger.find((i) => i.trigger_id === 'trig-remap')).toEqual({
      trigger_id: 'trig-remap',
      trigger_type: 'subscribe',
      function_id: 'public::echo',
      config: { topic: 'y', remap: true },
      metadata: null,
      context: { role: 'power' },
    });
  });

  it('runs the trigger type hook: approves, remaps, or refuses with a FORBIDDEN error frame', async () => {
    const raw = await rawClient('power');
    raw.send({ type: 'registertriggertype', id: 'tt::deny', description: 'denied' });
    raw.send({ type: 'registertriggertype', id: 'tt::rename', description: 'original' });
    raw.send({ type: 'registertriggertype', id: 'tt::ok', description: 'fine' });
    expect((await errorFrame(raw, /tt::deny/)).error.message).toBe(
      'Trigger type registration \'tt::deny\' refused: hook hook::type denied it (answered "nope", an object approves)',
    );
    await waitFor(() => engine.registry.triggerType('tt::ok'), 'the approved type');
    expect(engine.registry.triggerType('tt::renamed')).toMatchObject({ description: 'renamed by hook' });
    expect(engine.registry.triggerType('tt::rename')).toBeUndefined();
    expect(hookInputs.type.find((i) => i.trigger_type_id === 'tt::ok')).toEqual({
      trigger_type_id: 'tt::ok',
      description: 'fine',
      context: { role: 'power' },
    });
  });
});

describe('the function registration prefix', () => {
  it("stores a session's functions as <prefix>::<id> and calls the worker by its own id", async () => {
    const tenant = rbacWorker('tenant');
    tenant.registerFunction('echo', async (input: Any) => (tenantCalls.push(input), { tenant: true, got: input.v }));
    await functionRegistered(engine, 'tenant-a::echo');
    expect(engine.registry.pool('echo')).toHaveLength(0);
    expect(hookInputs.fn.some((i) => i.function_id === 'echo' && i.context.role === 'tenant')).toBe(true);
    // Called from the open port by the stored id; the SDK only runs it if the engine sent "echo".
    await expect(call(admin, 'tenant-a::echo', { v: 7 })).resolves.toEqual({ tenant: true, got: 7 });
  });

  it('prefixes trigger bindings, engine::register_trigger and unregisterfunction', async () => {
    const tenant = rbacWorker('tenant');
    const ref = tenant.registerFunction('listen', async (input: Any) => void tenantCalls.push(input));
    await functionRegistered(engine, 'tenant-a::listen');
    tenant.registerTrigger({ type: 'subscribe', function_id: 'listen', config: { topic: 'tenant-topic' } });
    await waitFor(
      () => engine.registry.triggersOfType('subscribe').find((t) => t.function_id === 'tenant-a::listen'),
      'the prefixed binding',
    );
    expect(hookInputs.trigger.some((i) => i.function_id === 'listen')).toBe(true);
    await call(admin, 'publish', { topic: 'tenant-topic', data: { published: 1 } });
    await waitFor(() => tenantCalls.some((c) => c.published === 1), 'the prefixed subscriber to be called');

    const { id } = await call(tenant, 'engine::register_trigger', {
      trigger_type: 'subscribe',
      function_id: 'listen',
      config: { topic: 'durable-topic' },
    });
    expect(engine.registry.trigger(id)?.function_id).toBe('tenant-a::listen');

    ref.unregister();
    await waitFor(
      () => engine.registry.pool('tenant-a::listen').length === 0,
      'the prefixed function to be unregistered',
    );
  });
});
