import net from 'node:net';
import { registerWorker, type IIIClient } from 'iii-sdk';
import { loadConfig } from '../../src/config/load';
import { MAX_EVENT_STREAMS } from '../../src/console/server';
import { startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { call, type Any } from '../support/calls';

/** Response bodies of the console API, read loosely. */
const body = (res: Response): Promise<Any> => res.json() as Promise<Any>;

/**
 * The console server's API (src/console/server.ts) against a real engine with real iii-sdk
 * workers: the worker token as login, read-only mode, and clear 4xx answers to bad input.
 */

const TOKEN = 'console-test-token-0123456789';

function consoleEngine(readOnly: boolean, maxConnectionsPerAddress = 1024): Promise<TestEngine> {
  const base = testConfig();
  return startEngine({
    console: { host: '127.0.0.1', port: 0, readOnly },
    limits: { ...base.limits, maxConnectionsPerAddress },
    listeners: base.listeners.map((l) => ({ ...l, authToken: TOKEN })),
  });
}

describe('console API', () => {
  let t: TestEngine;
  let ro: TestEngine;
  let base: string;
  let roBase: string;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const post = (url: string, body: unknown, headers: Record<string, string> = auth) =>
    fetch(`${url}/api/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    [t, ro] = await Promise.all([consoleEngine(false), consoleEngine(true)]);
    base = `http://127.0.0.1:${t.engine.consolePort}`;
    roBase = `http://127.0.0.1:${ro.engine.consolePort}`;
    const w = t.worker('console-api', { headers: auth });
    w.registerFunction('demo::double', async (d: { n: number }) => ({ n: d.n * 2 }));
    await waitFor(() => t.engine.registry.pool('demo::double').length > 0, 'demo::double registered');
  });
  afterAll(async () => {
    await Promise.all([t.close(), ro.close()]);
  });

  test('the console is off unless engine.console.port is set; III_CONSOLE_PORT and III_CONSOLE_READ_ONLY set it, a bad value stops startup', () => {
    expect(testConfig().console.port).toBeUndefined();
    expect(loadConfig({ env: { III_CONSOLE_PORT: '4000', III_CONSOLE_READ_ONLY: 'TRUE' } }).config.console).toEqual({
      host: '0.0.0.0',
      port: 4000,
      readOnly: true,
    });
    expect(() => loadConfig({ env: { III_CONSOLE_READ_ONLY: 'yes' } })).toThrow(
      /III_CONSOLE_READ_ONLY: expected one of "true", "false"/,
    );
    expect(() => loadConfig({ env: { III_CONSOLE_PORT: '70000' } })).toThrow(/III_CONSOLE_PORT/);
  });

  test('without the token: the page is the login form (401), the API 401, a wrong token 401', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('name="token"');
    const api = await fetch(`${base}/api/session`);
    expect(api.status).toBe(401);
    expect((await body(api)).error.code).toBe('UNAUTHORIZED');
    expect((await fetch(`${base}/api/session`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${base}/?token=wrong`, { redirect: 'manual' })).status).toBe(401);
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=wrong',
      redirect: 'manual',
    });
    expect(login.status).toBe(401);
    expect(login.headers.get('set-cookie')).toBeNull();
  });

  test('?token= and the login form set an HttpOnly SameSite=Strict cookie that is not the token, and it opens the API', async () => {
    const viaQuery = await fetch(`${base}/?token=${TOKEN}`, { redirect: 'manual' });
    expect(viaQuery.status).toBe(303);
    expect(viaQuery.headers.get('location')).toBe('/');
    const cookie = viaQuery.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const session = await fetch(`${base}/api/session`, { headers: { cookie: cookie.split(';')[0] } });
    expect(session.status).toBe(200);
    expect(await body(session)).toEqual({ node_id: 'test-node', read_only: false });
    expect(session.headers.get('cache-control')).toBe('no-store');
    expect(session.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  test('the shell page and the bundle are served, the bundle without a session', async () => {
    const page = await fetch(`${base}/`, { headers: auth });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="/app.js">');
    const js = await fetch(`${base}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(1000);
  });

  test('POST /api/call calls a real worker and the built-ins', async () => {
    const res = await post(base, { function_id: 'demo::double', payload: { n: 21 } });
    expect(res.status).toBe(200);
    // A change is traced: the answer names its trace, which the engine keeps.
    const answer = await body(res);
    expect(answer).toEqual({ result: { n: 42 }, trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    const traces = await body(
      await post(base, { function_id: 'engine::traces::list', payload: { trace_id: answer.trace_id } }),
    );
    expect(traces.result.spans.map((s: Any) => s.name)).toEqual(['demo::double']);
    const fns = await body(
      await post(base, { function_id: 'engine::functions::list', payload: { include_pool: true } }),
    );
    const row = fns.result.functions.find((f: { function_id: string }) => f.function_id === 'demo::double');
    expect(row.pool).toEqual([{ worker_id: expect.any(String), worker_name: 'console-api', node_id: 'test-node' }]);
  });

  test("engine::workers::list {include_node} names each worker's node; engine::cron::jobs and engine::cron::fire", async () => {
    const workers = await body(
      await post(base, { function_id: 'engine::workers::list', payload: { include_node: true } }),
    );
    expect(workers.result.workers.find((w: Any) => w.name === 'console-api').node_id).toBe('test-node');
    expect(workers.result.workers.find((w: Any) => w.name === 'iii-cron').node_id).toBeNull();
    const w = t.worker('console-cron', { headers: auth });
    let ticks = 0;
    w.registerFunction('demo::nightly', async () => {
      ticks++;
      return null;
    });
    w.registerTrigger({ type: 'cron', function_id: 'demo::nightly', config: { expression: '0 30 2 * * *' } });
    const jobs = await waitFor(async () => {
      const r = await body(await post(base, { function_id: 'engine::cron::jobs', payload: {} }));
      return r.result.jobs.find((j: Any) => j.function_id === 'demo::nightly');
    }, 'the cron job');
    expect(jobs).toMatchObject({
      expression: '0 30 2 * * *',
      last_fired_here_at: null,
      last_fired_node: null,
      last_fired_at_ms: null,
    });
    expect(new Date(jobs.next_fire_at).toISOString().slice(11, 19)).toBe('02:30:00');
    const fired = await post(base, { function_id: 'engine::cron::fire', payload: { trigger_id: jobs.trigger_id } });
    expect(fired.status).toBe(200);
    expect(ticks).toBe(1);
    const missing = await post(base, { function_id: 'engine::cron::fire', payload: { trigger_id: 'nope' } });
    expect(missing.status).toBe(404);
    expect((await body(missing)).error.message).toMatch(/No cron binding 'nope'/);
  });

  test('bad input gets a clear 4xx', async () => {
    const notJson = await post(base, '{nope');
    expect(notJson.status).toBe(400);
    expect((await body(notJson)).error.message).toMatch(/not JSON/);
    const noId = await post(base, { payload: {} });
    expect(noId.status).toBe(400);
    expect((await body(noId)).error.message).toMatch(/function_id/);
    const unknown = await post(base, { function_id: 'no::such', payload: {} });
    expect(unknown.status).toBe(404);
    expect((await body(unknown)).error.code).toBe('function_not_found');
    const badQueue = await post(base, { function_id: 'engine::queue::dlq_messages', payload: { topic: 'nope' } });
    expect(badQueue.status).toBe(400);
    expect((await body(badQueue)).error.message).toMatch(/nope/);
    const form = await fetch(`${base}/api/call`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(form.status).toBe(415);
    const big = await post(base, { function_id: 'demo::double', payload: { pad: 'x'.repeat(1024 * 1024 + 10) } });
    expect(big.status).toBe(413);
    expect((await fetch(`${base}/api/nothing`, { headers: auth })).status).toBe(404);
  });

  test('read-only: reads answer, every change is refused with 403 and nothing changes', async () => {
    const reads = await post(roBase, { function_id: 'engine::functions::list', payload: {} });
    expect(reads.status).toBe(200);
    expect(await body(await fetch(`${roBase}/api/session`, { headers: auth }))).toMatchObject({ read_only: true });
    const set = await post(roBase, { function_id: 'state::set', payload: { scope: 's', key: 'k', value: 1 } });
    expect(set.status).toBe(403);
    expect((await body(set)).error.message).toMatch(/read-only/);
    expect((await post(roBase, { function_id: 'iii::queue::redrive', payload: { queue: 'default' } })).status).toBe(
      403,
    );
    const worker = ro.worker('ro-check', { headers: auth });
    expect((await call(worker, 'state::get', { scope: 's', key: 'k' })) ?? null).toBeNull();
  });

  test("the live feed sends snapshots with every node and this node's figures", async () => {
    const controller = new AbortController();
    const res = await fetch(`${base}/api/events`, { headers: auth, signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const data = JSON.parse(text.slice(text.indexOf('data: ') + 6).split('\n')[0]);
    expect(data.nodes).toEqual([expect.objectContaining({ node_id: 'test-node', state: 'ready', self: true })]);
    expect(data.invocations.total).toEqual(expect.any(Number));
  });

  test('max_connections_per_address (2 here) holds on the console port: the third connection gets 429, the others keep working', async () => {
    const small = await consoleEngine(false, 2);
    const port = small.engine.consolePort!;
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect(port, '127.0.0.1');
        await new Promise((resolve) => s.once('connect', resolve));
        sockets.push(s);
      }
      const third = net.connect(port, '127.0.0.1');
      sockets.push(third);
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        third.on('data', (d) => (text += d.toString()));
        third.on('close', () => resolve(text));
        third.write(`GET /api/session HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`);
      });
      expect(answer).toMatch(/^HTTP\/1.1 429/);
      expect(answer).toContain('max_connections_per_address');
      sockets[0].destroy();
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/api/session`, { headers: auth })).status === 200,
        'a connection once one closed',
      );
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  test('at most MAX_EVENT_STREAMS live feeds per node: one more is 503 limit_exceeded', async () => {
    const controllers: AbortController[] = [];
    try {
      for (let i = 0; i < MAX_EVENT_STREAMS; i++) {
        const c = new AbortController();
        controllers.push(c);
        expect((await fetch(`${base}/api/events`, { headers: auth, signal: c.signal })).status).toBe(200);
      }
      const over = await fetch(`${base}/api/events`, { headers: auth });
      expect(over.status).toBe(503);
      expect((await body(over)).error.code).toBe('limit_exceeded');
    } finally {
      for (const c of controllers) c.abort();
    }
  });
});

describe('console sign-in through the worker port auth function (no token)', () => {
  let t: TestEngine;
  let admin: IIIClient;
  let base: string;
  const authInputs: Any[] = [];

  beforeAll(async () => {
    const open = testConfig().listeners[0]!;
    t = await startEngine({
      console: { host: '127.0.0.1', port: 0, readOnly: false },
      listeners: [
        {
          ...open,
          port: 0,
          handshakeTimeoutMs: 2000,
          rbac: { auth_function_id: 'auth::console', expose_functions: ['match("demo::*")'] },
        },
        { ...open, instanceId: 'iii-worker-manager#open', port: 0 },
      ],
    });
    base = `http://127.0.0.1:${t.engine.consolePort}`;
    // The auth function lives on a worker of the open port, as in the SDK's RBAC fixture.
    admin = registerWorker(`ws://127.0.0.1:${t.engine.ports[1]}`, {
      workerName: 'console-admin',
      enableMetricsReporting: false,
      otel: { enabled: false },
    });
    admin.registerFunction('auth::console', async (input: Any) => {
      authInputs.push(input);
      if (input.headers.authorization !== 'Bearer operator-credential') throw new Error('unknown operator');
      return { allowed_functions: ['engine::functions::list'], forbidden_functions: ['demo::secret'] };
    });
    admin.registerFunction('demo::triple', async (d: { n: number }) => ({ n: d.n * 3 }));
    admin.registerFunction('demo::secret', async () => ({ secret: true }));
    admin.registerFunction('other::hidden', async () => ({ hidden: true }));
    await waitFor(() => t.engine.registry.pool('other::hidden').length > 0, 'the admin functions');
  });
  afterAll(async () => {
    await admin.shutdown().catch(() => undefined);
    await t.close();
  });

  const callAs = (headers: Record<string, string>, functionId: string, payload: unknown = {}) =>
    fetch(`${base}/api/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ function_id: functionId, payload }),
    });

  test('no credential, or one the auth function refuses, is 401 with its reason', async () => {
    expect((await fetch(`${base}/api/session`)).status).toBe(401);
    const refused = await fetch(`${base}/api/session`, { headers: { authorization: 'Bearer guess' } });
    expect(refused.status).toBe(401);
    expect((await body(refused)).error.message).toMatch(/refused by the auth function: .*unknown operator/);
    const form = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=guess',
      redirect: 'manual',
    });
    expect(form.status).toBe(401);
    expect(await form.text()).toContain('unknown operator');
  });

  test('the login form keeps the credential in an HttpOnly cookie; the console then allows what a worker with it could call', async () => {
    const form = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=operator-credential',
      redirect: 'manual',
    });
    expect(form.status).toBe(303);
    const cookie = form.headers.get('set-cookie')!;
    expect(cookie).toBe('iii_console_credential=operator-credential; HttpOnly; SameSite=Strict; Path=/');
    const session = { cookie: cookie.split(';')[0]! };
    expect((await fetch(`${base}/api/session`, { headers: session })).status).toBe(200);
    // Exposed by the port's expose_functions, allowed by the auth function, forbidden by it, neither.
    expect(await body(await callAs(session, 'demo::triple', { n: 2 }))).toMatchObject({ result: { n: 6 } });
    expect((await callAs(session, 'engine::functions::list')).status).toBe(200);
    const secret = await callAs(session, 'demo::secret');
    expect(secret.status).toBe(403);
    expect((await body(secret)).error.message).toMatch(/demo::secret.*not allowed/);
    expect((await callAs(session, 'other::hidden')).status).toBe(403);
    // The auth function saw the credential as a worker's bearer token, and no console cookie.
    const seen = authInputs.find((i) => i.headers.authorization === 'Bearer operator-credential');
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.ip_address).toMatch(/127\.0\.0\.1/);
  });

  test('the auth function is asked once per credential and address within SIGN_IN_CACHE_MS, not per request', async () => {
    const headers = { authorization: 'Bearer operator-credential' };
    await fetch(`${base}/api/session`, { headers });
    const before = authInputs.length;
    for (let i = 0; i < 5; i++) expect((await fetch(`${base}/api/session`, { headers })).status).toBe(200);
    expect(authInputs.length).toBe(before);
  });
});
