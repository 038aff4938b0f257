import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpFunctionsSecurity } from '../../src/config/types';
import type { HttpInvocation, Json } from '../../src/protocol/messages';
import { EngineError } from '../../src/protocol/errors';
import {
  AUTH_SECRET_NOT_FOUND,
  AUTH_SECRET_RESERVED,
  DEFAULT_HTTP_TIMEOUT_MS,
  DEFAULT_MAX_BUFFERED_RESPONSE_BYTES,
  DEFAULT_MAX_RESPONSE_BYTES,
  type HttpFunctionOptions,
  hostInAllowlist,
  invokeHttpFunction,
  isBlockedAddress,
  matchesHostGlob,
  ResponseBudget,
  validateRegistration,
} from '../../src/router/http-functions';
import { guardedLookupVia, systemResolver } from '../../src/router/http-functions/guarded-lookup';

/** What the test server saw of one request. */
interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A real HTTP server on 127.0.0.1, port 0, recording every request it receives. */
class TestServer {
  readonly received: Received[] = [];
  private readonly server: Server;
  private handler: Handler = (_req, res) => res.end();

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        this.received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          body,
        });
        this.handler(req, res, body);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/webhook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  respond(handler: Handler): void {
    this.handler = handler;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The settings tests against the local server need (iii's CI fixture). */
const localSecurity: HttpFunctionsSecurity = {
  url_allowlist: ['127.0.0.1', 'localhost'],
  block_private_ips: false,
  require_https: false,
};

/** iii's defaults. */
const defaultSecurity: HttpFunctionsSecurity = {
  url_allowlist: ['*'],
  block_private_ips: true,
  require_https: true,
};

function options(overrides: Partial<HttpFunctionOptions> = {}): HttpFunctionOptions {
  return {
    security: localSecurity,
    env: {},
    maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
    defaultTimeoutMs: DEFAULT_HTTP_TIMEOUT_MS,
    responseBudget: new ResponseBudget(DEFAULT_MAX_BUFFERED_RESPONSE_BYTES),
    ...overrides,
  };
}

function json(res: ServerResponse, status: number, value: Json): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The EngineError a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return err as EngineError;
  }
  throw new Error('expected the call to fail');
}

describe('invokeHttpFunction', () => {
  let server: TestServer;

  beforeEach(async () => {
    server = await new TestServer().start();
  });

  afterEach(async () => {
    await server.stop();
  });

  function invocation(extra: Partial<HttpInvocation> = {}): HttpInvocation {
    return { url: server.url(), method: 'POST', ...extra };
  }

  test('sends the data as a JSON body with the iii headers', async () => {
    const before = Math.floor(Date.now() / 1000);
    await invokeHttpFunction('external::hook', invocation(), { order: 42, item: 'book' }, options());
    const after = Math.floor(Date.now() / 1000);

    const [req] = server.received;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/webhook');
    expect(JSON.parse(req.body.toString('utf8'))).toEqual({ order: 42, item: 'book' });
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-iii-function-path']).toBe('external::hook');
    expect(req.headers['x-iii-invocation-id']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const ts = Number(req.headers['x-iii-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(after);
    expect(req.headers['authorization']).toBeUndefined();
    expect(req.headers['traceparent']).toBeUndefined();
  });

  test('uses a fresh x-iii-Invocation-ID for every call', async () => {
    await invokeHttpFunction('f', invocation(), null, options());
    await invokeHttpFunction('f', invocation(), null, options());
    const [a, b] = server.received;
    expect(a.headers['x-iii-invocation-id']).not.toBe(b.headers['x-iii-invocation-id']);
  });

  test('uses the registered method (PUT) and the body contains the payload', async () => {
    await invokeHttpFunction('f', invocation({ method: 'PUT' }), { hello: 'world', n: 1 }, options());
    const [req] = server.received;
    expect(req.method).toBe('PUT');
    expect(JSON.parse(req.body.toString('utf8'))).toMatchObject({ hello: 'world', n: 1 });
  });

  test('sends a JSON body even for GET', async () => {
    await invokeHttpFunction('f', invocation({ method: 'GET' }), { q: 'x' }, options());
    const [req] = server.received;
    expect(req.method).toBe('GET');
    expect(req.body.toString('utf8')).toBe('{"q":"x"}');
  });

  test('adds the custom headers next to the iii headers', async () => {
    const headers = { 'x-team': 'payments', 'X-Custom-Header': 'custom-value', 'Content-Type': 'text/plain' };
    await invokeHttpFunction('f', invocation({ headers }), {}, options());
    const [req] = server.received;
    expect(req.headers['x-team']).toBe('payments');
    expect(req.headers['x-custom-header']).toBe('custom-value');
    // Added, not replacing: both Content-Type values arrive, ours first.
    const contentTypes = req.rawHeaders.filter((_, i) => i % 2 === 1 && /^content-type$/i.test(req.rawHeaders[i - 1]));
    expect(contentTypes).toEqual(['application/json', 'text/plain']);
  });

  test('bearer auth sends Authorization: Bearer <env value>', async () => {
    const env = { LAMBDA_TOKEN: 'tok-123' };
    await invokeHttpFunction(
      'f',
      invocation({ auth: { type: 'bearer', token_key: 'LAMBDA_TOKEN' } }),
      {},
      options({ env }),
    );
    expect(server.received[0].headers['authorization']).toBe('Bearer tok-123');
  });

  test('api_key auth sends the named header with the env value', async () => {
    const env = { API_KEY: 'key-456' };
    const auth = { type: 'api_key' as const, header: 'X-Api-Key', value_key: 'API_KEY' };
    await invokeHttpFunction('f', invocation({ auth }), {}, options({ env }));
    expect(server.received[0].headers['x-api-key']).toBe('key-456');
  });

  test('hmac auth signs "<timestamp>:<base64(body)>" with HMAC-SHA256 of the env secret', async () => {
    const env = { HOOK_SECRET: 's3cr3t' };
    await invokeHttpFunction(
      'f',
      invocation({ auth: { type: 'hmac', secret_key: 'HOOK_SECRET' } }),
      { a: [1, 2] },
      options({ env }),
    );
    const [req] = server.received;
    const timestamp = req.headers['x-iii-timestamp'] as string;
    const expected = createHmac('sha256', 's3cr3t')
      .update(`${timestamp}:${req.body.toString('base64')}`)
      .digest('hex');
    expect(req.headers['x-iii-signature']).toBe(`sha256=${expected}`);
  });

  test('reads the auth secret at call time', async () => {
    const env: NodeJS.ProcessEnv = { LAMBDA_TOKEN: 'old' };
    const inv = invocation({ auth: { type: 'bearer', token_key: 'LAMBDA_TOKEN' } });
    await invokeHttpFunction('f', inv, {}, options({ env }));
    env['LAMBDA_TOKEN'] = 'rotated';
    await invokeHttpFunction('f', inv, {}, options({ env }));
    expect(server.received.map((r) => r.headers['authorization'])).toEqual(['Bearer old', 'Bearer rotated']);
  });

  test('fails with auth_secret_not_found when the env var is gone at call time', async () => {
    const err = await rejection(
      invokeHttpFunction('f', invocation({ auth: { type: 'bearer', token_key: 'NOPE' } }), {}, options()),
    );
    expect(err.code).toBe(AUTH_SECRET_NOT_FOUND);
    expect(server.received).toHaveLength(0);
  });

  test('2xx with a JSON body → that JSON is the result', async () => {
    server.respond((_req, res) => json(res, 200, { ok: true, items: [1, 2] }));
    await expect(invokeHttpFunction('f', invocation(), {}, options())).resolves.toEqual({
      result: { ok: true, items: [1, 2] },
    });
  });

  test('2xx with JSON null → result null', async () => {
    server.respond((_req, res) => res.end('null'));
    await expect(invokeHttpFunction('f', invocation(), {}, options())).resolves.toEqual({ result: null });
  });

  test('204 → success without a result', async () => {
    server.respond((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const outcome = await invokeHttpFunction('f', invocation(), {}, options());
    expect(outcome).toEqual({});
    expect('result' in outcome).toBe(false);
  });

  test('200 with an empty body → success without a result', async () => {
    server.respond((_req, res) => res.end());
    await expect(invokeHttpFunction('f', invocation(), {}, options())).resolves.toEqual({});
  });

  test('2xx with a non-JSON body → invalid_response', async () => {
    server.respond((_req, res) => res.end('<html>hi</html>'));
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options()));
    expect(err.code).toBe('invalid_response');
  });

  test('≥ 400 with a JSON error object → its code and message', async () => {
    server.respond((_req, res) => json(res, 422, { error: { code: 'out_of_stock', message: 'No books left' } }));
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options()));
    expect(err.code).toBe('out_of_stock');
    expect(err.message).toBe('No books left');
  });

  test('≥ 400 with an error object lacking code and message → http_error "HTTP request failed"', async () => {
    server.respond((_req, res) => json(res, 400, { error: {} }));
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options()));
    expect(err.code).toBe('http_error');
    expect(err.message).toBe('HTTP request failed');
  });

  test('≥ 400 with a plain body → http_error "HTTP 500 Internal Server Error"', async () => {
    server.respond((_req, res) => {
      res.writeHead(500, 'Something Custom');
      res.end('boom');
    });
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options()));
    expect(err.code).toBe('http_error');
    expect(err.message).toBe('HTTP 500 Internal Server Error');
  });

  test('a 302 is not followed: success, and the Location is never requested', async () => {
    const target = await new TestServer().start();
    try {
      server.respond((_req, res) => {
        res.writeHead(302, { Location: target.url('/secret') });
        res.end();
      });
      await expect(invokeHttpFunction('f', invocation(), {}, options())).resolves.toEqual({});
      expect(target.received).toHaveLength(0);
    } finally {
      await target.stop();
    }
  });

  test('a 3xx with a JSON body → that JSON is the result', async () => {
    server.respond((_req, res) => json(res, 301, { moved: true }));
    await expect(invokeHttpFunction('f', invocation(), {}, options())).resolves.toEqual({ result: { moved: true } });
  });

  test('a server that never answers → http_request_failed after timeout_ms', async () => {
    server.respond(() => {
      /* never answers */
    });
    const started = Date.now();
    const err = await rejection(invokeHttpFunction('f', invocation({ timeout_ms: 200 }), {}, options()));
    expect(err.code).toBe('http_request_failed');
    expect(err.message).toContain('timed out after 200 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('the timeout also covers reading the body → http_response_failed', async () => {
    server.respond((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"partial":'); // and never ends
    });
    const err = await rejection(invokeHttpFunction('f', invocation({ timeout_ms: 300 }), {}, options()));
    expect(err.code).toBe('http_response_failed');
    expect(err.message).toContain('timed out after 300 ms');
  });

  test('a connection refused → http_request_failed naming the cause', async () => {
    const closed = await new TestServer().start();
    const url = closed.url();
    await closed.stop();
    const err = await rejection(invokeHttpFunction('f', { url, method: 'POST' }, {}, options()));
    expect(err.code).toBe('http_request_failed');
    expect(err.message).toContain('ECONNREFUSED');
  });

  test('a body cut off mid-way → http_response_failed', async () => {
    server.respond((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"a":', () => res.socket?.destroy());
    });
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options()));
    expect(err.code).toBe('http_response_failed');
  });

  test('a response with a Content-Length above maxResponseBytes → http_response_failed', async () => {
    server.respond((_req, res) => json(res, 200, { blob: 'x'.repeat(2000) }));
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options({ maxResponseBytes: 1024 })));
    expect(err.code).toBe('http_response_failed');
    expect(err.message).toContain('response larger than 1024 bytes');
  });

  test('a chunked response growing past maxResponseBytes → http_response_failed', async () => {
    server.respond((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const timer = setInterval(() => res.write('x'.repeat(512)), 5);
      res.on('close', () => clearInterval(timer));
    });
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options({ maxResponseBytes: 4096 })));
    expect(err.code).toBe('http_response_failed');
    expect(err.message).toContain('response larger than 4096 bytes');
  });

  test('a response of exactly maxResponseBytes is accepted', async () => {
    const text = JSON.stringify({ s: 'y'.repeat(100) });
    server.respond((_req, res) => res.end(text));
    const outcome = await invokeHttpFunction(
      'f',
      invocation(),
      {},
      options({ maxResponseBytes: Buffer.byteLength(text) }),
    );
    expect(outcome).toEqual({ result: { s: 'y'.repeat(100) } });
  });

  test('re-validates the URL on every call → url_validation_failed, nothing sent', async () => {
    const err = await rejection(invokeHttpFunction('f', invocation(), {}, options({ security: defaultSecurity })));
    expect(err.code).toBe('url_validation_failed');
    expect(server.received).toHaveLength(0);
  });

  test('a host name resolving to loopback is blocked at connect time when block_private_ips is on', async () => {
    const security = { ...localSecurity, block_private_ips: true };
    const url = `http://localhost:${server.port}/webhook`;
    expect(validateRegistration({ url, method: 'POST' }, { security, env: {} })).toBeUndefined();

    const err = await rejection(invokeHttpFunction('f', { url, method: 'POST' }, {}, options({ security })));
    expect(err.code).toBe('url_validation_failed');
    expect(err.message).toMatch(/^Private IP blocked: host localhost resolves to (127\.0\.0\.1|::1)/);
    expect(server.received).toHaveLength(0);
  });

  test('an unresolvable host name → url_validation_failed "DNS lookup failed" when block_private_ips is on', async () => {
    const security = { url_allowlist: [], block_private_ips: true, require_https: false };
    const err = await rejection(
      invokeHttpFunction('f', { url: 'http://no-such-host.invalid/x', method: 'POST' }, {}, options({ security })),
    );
    expect(err.code).toBe('url_validation_failed');
    expect(err.message).toMatch(/^DNS lookup failed: host no-such-host\.invalid/);
  });

  test('an invalid custom header value → http_request_failed', async () => {
    const err = await rejection(
      invokeHttpFunction('f', invocation({ headers: { 'x-bad': 'a\r\nInjected: 1' } }), {}, options()),
    );
    expect(err.code).toBe('http_request_failed');
    expect(server.received).toHaveLength(0);
  });
});

describe('validateRegistration', () => {
  const opts = (security: HttpFunctionsSecurity, env: NodeJS.ProcessEnv = {}) => ({ security, env });
  const open: HttpFunctionsSecurity = { url_allowlist: [], block_private_ips: true, require_https: false };

  test('accepts a public https URL under the default security', () => {
    expect(
      validateRegistration({ url: 'https://fn.example.com/run', method: 'POST' }, opts(defaultSecurity)),
    ).toBeUndefined();
  });

  test('an unparseable URL → Invalid URL', () => {
    const err = validateRegistration({ url: 'not a url', method: 'POST' }, opts(open));
    expect(err?.code).toBe('url_validation_failed');
    expect(err?.message).toMatch(/^Invalid URL: "not a url"/);
  });

  test('a non-http scheme → Invalid URL', () => {
    const err = validateRegistration({ url: 'ftp://example.com/x', method: 'POST' }, opts(open));
    expect(err?.message).toMatch(/^Invalid URL: ftp:\/\/example\.com\/x uses ftp:/);
  });

  test('http is refused by default → HTTPS is required', () => {
    const err = validateRegistration({ url: 'http://fn.example.com/run', method: 'POST' }, opts(defaultSecurity));
    expect(err?.code).toBe('url_validation_failed');
    expect(err?.message).toMatch(/^HTTPS is required: http:\/\/fn\.example\.com\/run/);
  });

  test('a host matching an allowlist glob is accepted', () => {
    const security = { ...open, url_allowlist: ['*.example.com'] };
    expect(validateRegistration({ url: 'https://api.example.com/x', method: 'POST' }, opts(security))).toBeUndefined();
  });

  test('a host matching no allowlist glob → URL not in allowlist', () => {
    const security = { ...open, url_allowlist: ['*.example.com', 'localhost'] };
    const err = validateRegistration({ url: 'https://example.org/x', method: 'POST' }, opts(security));
    expect(err?.code).toBe('url_validation_failed');
    expect(err?.message).toMatch(/^URL not in allowlist: host example\.org/);
  });

  test('allowlist entries with a scheme never match (the glob sees the host only)', () => {
    const security = { ...open, url_allowlist: ['https://example.com'] };
    const err = validateRegistration({ url: 'https://example.com/x', method: 'POST' }, opts(security));
    expect(err?.message).toMatch(/^URL not in allowlist/);
  });

  // What the URL parser normalises each spelling to is the address judged and connected to.
  test.each([
    ['http://127.0.0.1/x', '127.0.0.1'],
    ['http://10.0.0.1/x', '10.0.0.1'],
    ['http://169.254.1.1/x', '169.254.1.1'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['http://[::1]/x', '::1'],
    ['http://[::]/x', '::'],
    ['http://[::ffff:127.0.0.1]/x', '::ffff:7f00:1'],
    ['http://[::ffff:7f00:1]/x', '::ffff:7f00:1'],
    ['http://[0:0:0:0:0:ffff:127.0.0.1]/x', '::ffff:7f00:1'],
    ['http://[::127.0.0.1]/x', '::7f00:1'],
    ['http://[64:ff9b::127.0.0.1]/x', '64:ff9b::7f00:1'],
    ['http://[64:ff9b::a9fe:a9fe]/x', '64:ff9b::a9fe:a9fe'],
    ['http://[2002:7f00:1::]/x', '2002:7f00:1::'],
    ['http://[fd00::1]/x', 'fd00::1'],
    ['http://[fe80::1]/x', 'fe80::1'],
    ['http://127.1/x', '127.0.0.1'],
    ['http://2130706433/x', '127.0.0.1'],
    ['http://0x7f.1/x', '127.0.0.1'],
    ['http://0x7f000001/x', '127.0.0.1'],
    ['http://017700000001/x', '127.0.0.1'],
    ['http://0177.0.0.1/x', '127.0.0.1'],
    ['http://%31%32%37.0.0.1/x', '127.0.0.1'],
    ['http://127.0.0.1./x', '127.0.0.1'],
    ['http://127\u30020\u30020\u30021/x', '127.0.0.1'],
    ['http://0/x', '0.0.0.0'],
    ['http://0.0.0.0/x', '0.0.0.0'],
    ['http://4294967295/x', '255.255.255.255'],
    ['http://100.100.100.200/x', '100.100.100.200'],
    ['http://224.0.0.251/x', '224.0.0.251'],
  ])('a private literal IP is blocked by default: %s', (url, ip) => {
    const err = validateRegistration({ url, method: 'POST' }, opts({ ...defaultSecurity, require_https: false }));
    expect(err?.code).toBe('url_validation_failed');
    expect(err?.message).toMatch(/^Private IP blocked: /);
    expect(err?.message).toContain(`targets ${ip}`);
  });

  test.each([
    'http://8.8.8.8/x',
    'http://134744072/x',
    'http://[2606:4700::1111]/x',
    'http://[::ffff:8.8.8.8]/x',
    'http://[64:ff9b::808:808]/x',
  ])('a public literal IP passes: %s', (url) => {
    expect(
      validateRegistration({ url, method: 'POST' }, opts({ ...defaultSecurity, require_https: false })),
    ).toBeUndefined();
  });

  test.each(['http://4294967296/x', 'http://[fe80::1%25eth0]/x', 'http://[::1/x'])(
    'an address the URL parser rejects → Invalid URL: %s',
    (url) => {
      const err = validateRegistration({ url, method: 'POST' }, opts({ ...defaultSecurity, require_https: false }));
      expect(err?.code).toBe('url_validation_failed');
      expect(err?.message).toMatch(/^Invalid URL: /);
    },
  );

  test('a private literal IP is accepted when block_private_ips is off', () => {
    expect(validateRegistration({ url: 'http://127.0.0.1:9/x', method: 'POST' }, opts(localSecurity))).toBeUndefined();
  });

  test('host names are not resolved at registration', () => {
    expect(
      validateRegistration({ url: 'https://no-such-host.invalid/x', method: 'POST' }, opts(defaultSecurity)),
    ).toBeUndefined();
  });

  test.each([
    [{ type: 'bearer', token_key: 'MISSING_TOKEN' }, 'token_not_found', 'MISSING_TOKEN'],
    [{ type: 'hmac', secret_key: 'MISSING_SECRET' }, 'secret_not_found', 'MISSING_SECRET'],
    [{ type: 'api_key', header: 'x-api-key', value_key: 'MISSING_KEY' }, 'api_key_not_found', 'MISSING_KEY'],
  ] as const)('a missing env var for %o → auth_secret_not_found', (auth, logCode, envVar) => {
    const err = validateRegistration(
      { url: 'https://fn.example.com/run', method: 'POST', auth },
      opts(defaultSecurity),
    );
    expect(err?.code).toBe(AUTH_SECRET_NOT_FOUND);
    expect(err?.message).toMatch(new RegExp(`^${logCode}: environment variable ${envVar}`));
  });

  test('an auth env var that is set (even empty) passes', () => {
    const err = validateRegistration(
      { url: 'https://fn.example.com/run', method: 'POST', auth: { type: 'hmac', secret_key: 'S' } },
      opts(defaultSecurity, { S: '' }),
    );
    expect(err).toBeUndefined();
  });
});

describe('auth secrets the engine keeps for itself', () => {
  const opts = {
    security: { url_allowlist: [], block_private_ips: true, require_https: false },
    env: { III_REDIS_URL: 'redis://:pw@redis:6379', III_WORKER_TOKEN: 't0k' },
  };

  test.each([
    [{ type: 'bearer', token_key: 'III_WORKER_TOKEN' }, 'III_WORKER_TOKEN'],
    [{ type: 'hmac', secret_key: 'III_REDIS_URL' }, 'III_REDIS_URL'],
    [{ type: 'api_key', header: 'x-key', value_key: 'iii_redis_password' }, 'iii_redis_password'],
  ] as const)(
    'an auth block naming an engine variable (%o) → auth_secret_reserved, even when it is set',
    (auth, envVar) => {
      const err = validateRegistration({ url: 'https://fn.example.com/run', method: 'POST', auth }, opts);
      expect(err?.code).toBe(AUTH_SECRET_RESERVED);
      expect(err?.message).toContain(`environment variable ${envVar}`);
      expect(err?.message).toContain('III_*');
      expect(err?.message).not.toContain('pw');
    },
  );
});

describe('host allowlist globs', () => {
  test.each([
    ['localhost', 'localhost', true],
    ['api.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['a.b.example.com', '*.example.com', true],
    ['api-1.example.com', 'api-?.example.com', true],
    ['api-12.example.com', 'api-?.example.com', false],
    ['b.example.com', '[ab].example.com', true],
    ['c.example.com', '[ab].example.com', false],
    ['c.example.com', '[!ab].example.com', true],
    ['q.example.com', '[a-z].example.com', true],
    ['API.Example.com', 'api.example.com', true],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '*a*a*a*a*a*a*a*a*a*b', false],
    ['x', '[x', false],
  ])('%s vs %s → %s', (host, pattern, expected) => {
    expect(matchesHostGlob(host, pattern)).toBe(expected);
  });

  test('an empty allowlist allows every host', () => {
    expect(hostInAllowlist('anything.example', [])).toBe(true);
  });

  test('an IPv6 host can be allowlisted without brackets', () => {
    expect(hostInAllowlist('[::1]', ['::1'])).toBe(true);
  });
});

describe('blocked addresses', () => {
  test.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', '"this network" 0/8'],
    ['10.1.2.3', 'RFC 1918 10/8'],
    ['172.16.0.1', 'RFC 1918 172.16/12'],
    ['172.31.255.255', 'RFC 1918 172.16/12 (last)'],
    ['192.168.1.1', 'RFC 1918 192.168/16'],
    ['100.64.0.1', 'CGNAT 100.64/10'],
    ['100.127.255.255', 'CGNAT (last)'],
    ['100.100.100.200', 'Alibaba Cloud metadata (CGNAT)'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback 127/8'],
    ['169.254.169.254', 'cloud metadata (link-local)'],
    ['169.254.0.1', 'link-local'],
    ['192.0.0.170', 'IETF protocol assignments 192.0.0/24'],
    ['192.0.2.1', 'TEST-NET-1'],
    ['198.51.100.7', 'TEST-NET-2'],
    ['203.0.113.9', 'TEST-NET-3'],
    ['198.18.0.1', 'benchmarking 198.18/15'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast (SSDP)'],
    ['240.0.0.1', 'reserved 240/4'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'IPv6 unspecified'],
    ['::1', 'IPv6 loopback'],
    ['::7f00:1', 'IPv4-compatible ::127.0.0.1'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback (dotted)'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback (hex)'],
    ['::ffff:10.0.0.1', 'IPv4-mapped RFC 1918'],
    ['::ffff:c0a8:101', 'IPv4-mapped 192.168.1.1'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata'],
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['64:ff9b::127.0.0.1', 'NAT64 of 127.0.0.1 (dotted)'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of metadata'],
    ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
    ['64:ff9b:1::808:808', 'local-use NAT64 64:ff9b:1::/48'],
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', '6to4 of metadata'],
    ['100::1', 'discard-only 100::/64'],
    ['2001:db8::1', 'documentation'],
    ['fc00::1', 'unique-local'],
    ['fdff::1', 'unique-local (fd)'],
    ['fd00::2', 'unique-local (this host)'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with zone id'],
    ['fec0::1', 'site-local (deprecated)'],
    ['ff02::1', 'multicast'],
  ])('%s is blocked (%s)', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  test.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '100.63.255.255',
    '192.0.1.1',
    '198.20.0.1',
    '223.255.255.255',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:4860:4860::8888',
  ])('%s is not blocked', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  test('a host name is not an address (names are judged after resolution)', () => {
    expect(isBlockedAddress('localhost')).toBe(false);
  });
});

describe('guardedLookupVia', () => {
  function lookup(hostname: string, all: boolean): Promise<{ err: Error | null; address: unknown; family?: number }> {
    return new Promise((resolve) => {
      guardedLookupVia(systemResolver)(hostname, { all }, (err, address, family) => resolve({ err, address, family }));
    });
  }

  test('passes allowed addresses on in the shape net asks for (all: true)', async () => {
    const { err, address } = await lookup('8.8.8.8', true);
    expect(err).toBeNull();
    expect(address).toEqual([{ address: '8.8.8.8', family: 4 }]);
  });

  test('passes allowed addresses on in the shape net asks for (all: false)', async () => {
    const { err, address, family } = await lookup('8.8.8.8', false);
    expect(err).toBeNull();
    expect(address).toBe('8.8.8.8');
    expect(family).toBe(4);
  });

  test('refuses a blocked address with url_validation_failed', async () => {
    const { err } = await lookup('169.254.169.254', true);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('url_validation_failed');
    expect(err?.message).toMatch(/^Private IP blocked: host 169\.254\.169\.254 resolves to 169\.254\.169\.254/);
  });

  test('refuses a name when any one of its addresses is blocked, even after allowed ones', async () => {
    const twoFaced = guardedLookupVia((_host, _opts, cb) =>
      cb(null, [
        { address: '8.8.8.8', family: 4 },
        { address: '::ffff:10.0.0.1', family: 6 },
      ]),
    );
    const err = await new Promise<Error | null>((resolve) =>
      twoFaced('mixed.example', { all: true }, (e) => resolve(e)),
    );
    expect(err).toBeInstanceOf(EngineError);
    expect(err?.message).toBe(
      'Private IP blocked: host mixed.example resolves to ::ffff:10.0.0.1 (security.block_private_ips is on)',
    );
  });

  test('a name without addresses → DNS lookup failed', async () => {
    const empty = guardedLookupVia((_host, _opts, cb) => cb(null, []));
    const err = await new Promise<Error | null>((resolve) => empty('void.example', { all: true }, (e) => resolve(e)));
    expect((err as EngineError).code).toBe('url_validation_failed');
    expect(err?.message).toBe('DNS lookup failed: host void.example has no addresses');
  });
});
