import { createHmac } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvocationError } from 'iii-sdk';
import type { EngineConfig } from '../../src/config/types';
import { functionRegistered, sleep, startEngine, waitFor, type TestEngine } from '../support/engine';

/** What the test server saw of one request. */
interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Reply = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A real HTTP server on 127.0.0.1 recording every request; replies per path. */
class RecordingServer {
  readonly received: Received[] = [];
  readonly replies = new Map<string, Reply>();
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const path = req.url ?? '';
        this.received.push({ method: req.method ?? '', path, headers: req.headers, body });
        const reply = this.replies.get(path) ?? echo;
        reply(req, res, body);
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get base(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  requestsTo(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The default reply: 200 with JSON naming what was received. */
const echo: Reply = (req, res, body) => {
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      ok: true,
      method: req.method,
      path: req.url,
      received: JSON.parse(body.toString('utf8')) as unknown,
    }),
  );
};

const ENV = { BEARER_TOKEN: 'tok', HMAC_SECRET: 'sek', API_KEY_VALUE: 'k1' };

const CI_SECURITY: Partial<EngineConfig> = {
  httpFunctions: {
    enabled: true,
    security: { url_allowlist: ['127.0.0.1', 'localhost'], block_private_ips: false, require_https: false },
  },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function parseBody(r: Received): Record<string, unknown> {
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected the call to fail, it returned ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

describe('HTTP-invoked functions (CI security settings)', () => {
  let t: TestEngine;
  let server: RecordingServer;
  beforeEach(async () => {
    server = new RecordingServer();
    await server.listen();
    t = await startEngine(CI_SECURITY, { ...ENV });
  });
  afterEach(async () => {
    await t.close();
    await server.close();
  });

  test('bearer auth: the engine POSTs the payload with its headers and the caller gets the JSON reply', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction(
      'ext::bearer',
      {
        url: `${server.base}/bearer`,
        method: 'POST',
        timeout_ms: 3000,
        headers: { 'x-team': 'a' },
        auth: { type: 'bearer', token_key: 'BEARER_TOKEN' },
      },
      { description: 'Bearer-authenticated webhook' },
    );
    await functionRegistered(t.engine, 'ext::bearer');

    const before = Math.floor(Date.now() / 1000);
    const result = await caller.trigger({
      function_id: 'ext::bearer',
      payload: { order: 42, items: ['x', 'y'] },
      metadata: { secret_meta: 'm' },
    });
    const after = Math.floor(Date.now() / 1000);

    expect(server.received).toHaveLength(1);
    const [req] = server.received;
    expect(result).toEqual({ ok: true, method: 'POST', path: '/bearer', received: parseBody(req) });
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/bearer');
    expect(req.headers['x-team']).toBe('a');
    expect(req.headers['authorization']).toBe('Bearer tok');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-iii-function-path']).toBe('ext::bearer');
    expect(req.headers['x-iii-invocation-id']).toMatch(UUID);
    const ts = Number(req.headers['x-iii-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(after);
    expect(req.headers['x-iii-signature']).toBeUndefined();
    const body = parseBody(req);
    expect(body).toMatchObject({ order: 42, items: ['x', 'y'] });
    // Worker-originated object payloads carry the caller id; invocation metadata is not forwarded.
    expect(body._caller_worker_id).toEqual(expect.any(String));
    expect(req.body.toString('utf8')).not.toContain('secret_meta');
  });

  test('api_key auth: the named header carries the env value (PUT)', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::apikey', {
      url: `${server.base}/apikey?v=1`,
      method: 'PUT',
      timeout_ms: 3000,
      headers: { 'x-team': 'b' },
      auth: { type: 'api_key', header: 'x-api-key', value_key: 'API_KEY_VALUE' },
    });
    await functionRegistered(t.engine, 'ext::apikey');

    const result = await caller.trigger({ function_id: 'ext::apikey', payload: { id: 'k' } });
    const [req] = server.requestsTo('/apikey?v=1');
    expect(req).toBeDefined();
    expect(result).toMatchObject({ ok: true, method: 'PUT', path: '/apikey?v=1', received: { id: 'k' } });
    expect(req.method).toBe('PUT');
    expect(req.headers['x-api-key']).toBe('k1');
    expect(req.headers['x-team']).toBe('b');
    expect(req.headers['authorization']).toBeUndefined();
    expect(req.headers['x-iii-function-path']).toBe('ext::apikey');
    expect(parseBody(req)).toMatchObject({ id: 'k' });
  });

  test('hmac auth: x-iii-signature is sha256=HMAC(secret, "<timestamp>:<base64 body>") (PATCH)', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::hmac', {
      url: `${server.base}/hmac`,
      method: 'PATCH',
      timeout_ms: 3000,
      auth: { type: 'hmac', secret_key: 'HMAC_SECRET' },
    });
    await functionRegistered(t.engine, 'ext::hmac');

    const result = await caller.trigger({ function_id: 'ext::hmac', payload: { amount: 10, note: 'é ✓' } });
    const [req] = server.requestsTo('/hmac');
    expect(result).toMatchObject({ ok: true, method: 'PATCH', received: { amount: 10, note: 'é ✓' } });
    expect(req.method).toBe('PATCH');
    const timestamp = req.headers['x-iii-timestamp'];
    expect(timestamp).toMatch(/^\d+$/);
    const expected = createHmac('sha256', 'sek')
      .update(`${String(timestamp)}:${req.body.toString('base64')}`)
      .digest('hex');
    expect(req.headers['x-iii-signature']).toBe(`sha256=${expected}`);
    expect(req.headers['authorization']).toBeUndefined();
    expect(req.headers['x-iii-function-path']).toBe('ext::hmac');
    expect(parseBody(req)).toMatchObject({ amount: 10, note: 'é ✓' });
  });

  test('GET still sends the JSON body; an empty 2xx reply is a success without a result', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    server.replies.set('/empty', (_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    owner.registerFunction('ext::get', { url: `${server.base}/empty`, method: 'GET', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::get');

    await expect(caller.trigger({ function_id: 'ext::get', payload: { q: 'z' } })).resolves.toBeUndefined();
    const [req] = server.requestsTo('/empty');
    expect(req.method).toBe('GET');
    expect(parseBody(req)).toMatchObject({ q: 'z' });
  });

  test('a 500 with {"error":{code,message}} reaches the caller as InvocationError with that code', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    server.replies.set('/fail', (_req, res) => {
      res.statusCode = 500;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: { code: 'bad_thing', message: 'nope' } }));
    });
    owner.registerFunction('ext::fail', { url: `${server.base}/fail`, method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::fail');

    const err = await errorOf(caller.trigger({ function_id: 'ext::fail', payload: {} }));
    expect(err).toBeInstanceOf(InvocationError);
    // The SDK's InvocationError message is "<code>: <message>".
    expect(err).toMatchObject({ code: 'bad_thing', message: 'bad_thing: nope', function_id: 'ext::fail' });
  });

  test('a 500 without an error object maps to http_error with the status line', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    server.replies.set('/plain500', (_req, res) => {
      res.statusCode = 500;
      res.end('kaput');
    });
    owner.registerFunction('ext::plain500', { url: `${server.base}/plain500`, method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::plain500');

    const err = await errorOf(caller.trigger({ function_id: 'ext::plain500', payload: {} }));
    expect(err).toMatchObject({ code: 'http_error', message: 'http_error: HTTP 500 Internal Server Error' });
  });

  test('the per-function timeout_ms fails a call whose endpoint never answers with http_request_failed', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    server.replies.set('/hang', () => undefined);
    owner.registerFunction('ext::hang', { url: `${server.base}/hang`, method: 'POST', timeout_ms: 200 });
    await functionRegistered(t.engine, 'ext::hang');

    const started = Date.now();
    const err = await errorOf(caller.trigger({ function_id: 'ext::hang', payload: {} }));
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(InvocationError);
    expect(err).toMatchObject({ code: 'http_request_failed', message: expect.stringMatching(/time/i) });
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(3000);
    expect(server.requestsTo('/hang')).toHaveLength(1);
    expect(t.engine.router.pending.size).toBe(0);
  });

  test('a connection failure is http_request_failed', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    const closed = new RecordingServer();
    await closed.listen();
    const deadUrl = `${closed.base}/gone`;
    await closed.close();
    owner.registerFunction('ext::dead', { url: deadUrl, method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::dead');

    const err = await errorOf(caller.trigger({ function_id: 'ext::dead', payload: {} }));
    expect(err).toMatchObject({ code: 'http_request_failed' });
  });

  test('engine::functions::list shows an HTTP-invoked function with its description', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction(
      'ext::listed',
      { url: `${server.base}/listed`, method: 'POST', auth: { type: 'bearer', token_key: 'BEARER_TOKEN' } },
      { description: 'An external lambda' },
    );
    await functionRegistered(t.engine, 'ext::listed');

    const out = (await caller.trigger({ function_id: 'engine::functions::list', payload: { prefix: 'ext::' } })) as {
      functions: Array<{ function_id: string; description?: string }>;
    };
    expect(out.functions).toEqual([
      expect.objectContaining({ function_id: 'ext::listed', description: 'An external lambda' }),
    ]);
    // The auth env var names are not secrets, but the secrets themselves must never be listed.
    expect(JSON.stringify(out)).not.toContain('tok');
  });

  test('the function disappears when its registering worker shuts down', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::owned', { url: `${server.base}/owned`, method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::owned');
    await expect(caller.trigger({ function_id: 'ext::owned', payload: { n: 1 } })).resolves.toMatchObject({ ok: true });

    await owner.shutdown();
    await waitFor(() => t.engine.registry.pool('ext::owned').length === 0, 'ext::owned to be removed');
    const err = await errorOf(caller.trigger({ function_id: 'ext::owned', payload: { n: 2 } }));
    expect(err).toMatchObject({ code: 'function_not_found' });
    expect(server.requestsTo('/owned')).toHaveLength(1);
  });

  test('unregistering the function removes it', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    const ref = owner.registerFunction('ext::temp', { url: `${server.base}/temp`, method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::temp');
    ref.unregister();
    await waitFor(() => t.engine.registry.pool('ext::temp').length === 0, 'ext::temp to be removed');
    await expect(errorOf(caller.trigger({ function_id: 'ext::temp', payload: {} }))).resolves.toMatchObject({
      code: 'function_not_found',
    });
  });

  test('a registration whose auth env var is not set is refused', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::nosecret', {
      url: `${server.base}/nosecret`,
      method: 'POST',
      auth: { type: 'bearer', token_key: 'NOT_SET_ANYWHERE' },
    });
    // A control registration sent after it proves the first one has been processed.
    owner.registerFunction('ext::control', { url: `${server.base}/control`, method: 'POST' });
    await functionRegistered(t.engine, 'ext::control');
    expect(t.engine.registry.pool('ext::nosecret')).toHaveLength(0);
    await expect(errorOf(caller.trigger({ function_id: 'ext::nosecret', payload: {} }))).resolves.toMatchObject({
      code: 'function_not_found',
    });
    expect(server.requestsTo('/nosecret')).toHaveLength(0);
  });

  test('a URL whose host is not in the allowlist is refused', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    const port = new URL(server.base).port;
    owner.registerFunction('ext::elsewhere', { url: `http://127.0.0.2:${port}/x`, method: 'POST' });
    owner.registerFunction('ext::control', { url: `${server.base}/control`, method: 'POST' });
    await functionRegistered(t.engine, 'ext::control');
    expect(t.engine.registry.pool('ext::elsewhere')).toHaveLength(0);
    await expect(errorOf(caller.trigger({ function_id: 'ext::elsewhere', payload: {} }))).resolves.toMatchObject({
      code: 'function_not_found',
    });
  });
});

describe('HTTP-invoked functions (default security)', () => {
  let t: TestEngine;
  let server: RecordingServer;
  beforeEach(async () => {
    server = new RecordingServer();
    await server.listen();
    t = await startEngine();
  });
  afterEach(async () => {
    await t.close();
    await server.close();
  });

  test('registering http://127.0.0.1 is refused (https required, private IPs blocked)', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction(
      'ext::local',
      { url: `${server.base}/x`, method: 'POST', timeout_ms: 3000 },
      { description: 'should be refused' },
    );
    // https fixes the scheme but the host is still a loopback literal.
    owner.registerFunction('ext::local-https', {
      url: `${server.base.replace('http:', 'https:')}/x`,
      method: 'POST',
      timeout_ms: 3000,
    });
    owner.registerFunction('local::handler', async () => 'ok');
    await functionRegistered(t.engine, 'local::handler');
    await sleep(200);

    expect(t.engine.registry.pool('ext::local')).toHaveLength(0);
    expect(t.engine.registry.pool('ext::local-https')).toHaveLength(0);
    await expect(errorOf(caller.trigger({ function_id: 'ext::local', payload: {} }))).resolves.toMatchObject({
      code: 'function_not_found',
    });
    await expect(errorOf(caller.trigger({ function_id: 'ext::local-https', payload: {} }))).resolves.toMatchObject({
      code: 'function_not_found',
    });
    expect(server.received).toHaveLength(0);
  });
});
