import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { HttpFunctionsSecurity } from '../../src/config/types';
import type { EngineConfig } from '../../src/config/types';
import { EngineError } from '../../src/protocol/errors';
import {
  DEFAULT_MAX_BUFFERED_RESPONSE_BYTES,
  type HttpFunctionOptions,
  invokeHttpFunction,
  ResponseBudget,
  validateRegistration,
} from '../../src/router/http-functions';
import type { Resolver } from '../../src/router/http-functions/guarded-lookup';
import { failure } from '../support/calls';
import { functionRegistered, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';

/**
 * SSRF hardening of HTTP-invoked functions, against real sockets: which address is judged
 * (DNS rebinding, keep-alive pools), redirects, response size and time limits, and what a
 * caller can and cannot put into the request. Every server counts the TCP connections it
 * accepts, so "refused" means nothing reached it, not just that no request was parsed.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP server on 127.0.0.1 counting connections, requests and connections closed. */
class Target {
  connections = 0;
  closed = 0;
  requests: IncomingMessage[] = [];
  private readonly server: HttpServer;
  private handler: Handler = (_req, res) => res.end();

  constructor() {
    this.server = createHttpServer((req, res) => {
      this.requests.push(req);
      this.handler(req, res);
    });
    this.server.on('connection', (socket: Socket) => {
      this.connections++;
      socket.on('close', () => this.closed++);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook', host = '127.0.0.1'): string {
    return `http://${host}:${this.port}${path}`;
  }

  respond(handler: Handler): void {
    this.handler = handler;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A raw TCP server whose connections are handed to `onSocket` (for malformed HTTP). */
class RawTarget {
  connections = 0;
  closed = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: TcpServer;

  constructor(onSocket: (socket: Socket) => void) {
    this.server = createTcpServer((socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.resume(); // reading is how a closed peer is noticed
      socket.on('close', () => {
        this.closed++;
        this.sockets.delete(socket);
      });
      onSocket(socket);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Writes `chunk` repeatedly, honouring backpressure, until the socket closes or `capBytes` are written. */
function stream(res: ServerResponse, chunk: Buffer, capBytes: number, written: { bytes: number }): void {
  const pump = (): void => {
    while (!res.destroyed && written.bytes < capBytes) {
      written.bytes += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  res.on('error', () => undefined);
  pump();
}

/** Calls `tick` every `everyMs` until the socket closes (or 2 000 ticks, a bound for the test). */
function drip(socket: Socket | ServerResponse, everyMs: number, tick: () => void): void {
  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks > 2000) clearInterval(timer);
    else tick();
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

const LOCAL: HttpFunctionsSecurity = {
  url_allowlist: ['127.0.0.1', 'localhost', '*.example'],
  block_private_ips: false,
  require_https: false,
};
const GUARDED: HttpFunctionsSecurity = { ...LOCAL, block_private_ips: true };

function options(security: HttpFunctionsSecurity, extra: Partial<HttpFunctionOptions> = {}): HttpFunctionOptions {
  const responseBudget = new ResponseBudget(DEFAULT_MAX_BUFFERED_RESPONSE_BYTES);
  return { security, env: {}, maxResponseBytes: 16 * 1024 * 1024, defaultTimeoutMs: 5000, responseBudget, ...extra };
}

async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  const err = await promise.then(
    (value) => new Error(`expected a failure, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  if (!(err instanceof EngineError)) throw err;
  return err;
}

/** A resolver that records its queries and answers from `answers` (the last one repeats). */
function scriptedResolver(...answers: string[][]): Resolver & { queries: string[] } {
  const queries: string[] = [];
  const resolve: Resolver = (hostname, _options, callback) => {
    const answer = answers[Math.min(queries.length, answers.length - 1)];
    queries.push(hostname);
    setImmediate(() =>
      callback(
        null,
        answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      ),
    );
  };
  return Object.assign(resolve, { queries });
}

describe('DNS rebinding: the address judged is the address connected to', () => {
  let target: Target;
  beforeEach(async () => {
    target = await new Target().start();
  });
  afterEach(async () => {
    await target.stop();
  });

  test('validation resolves nothing; the call resolves once, while connecting, and a loopback answer is refused before any connection', async () => {
    const dns = scriptedResolver(['127.0.0.1']);
    const invocation = { url: target.url('/hook', 'rebind.example'), method: 'POST' as const };
    expect(validateRegistration(invocation, { security: GUARDED, env: {} })).toBeUndefined();
    expect(dns.queries).toEqual([]);

    const err = await rejection(invokeHttpFunction('f', invocation, {}, options(GUARDED, { resolve: dns })));
    expect(err.code).toBe('url_validation_failed');
    expect(err.message).toBe(
      'Private IP blocked: host rebind.example resolves to 127.0.0.1 (security.block_private_ips is on)',
    );
    expect(dns.queries).toEqual(['rebind.example']);
    expect(target.connections).toBe(0);
  });

  test('every call resolves again: an answer that turns to loopback between calls is refused on the call that sees it', async () => {
    // First answer: a blocked metadata address; then loopback. Both calls must be judged afresh.
    const dns = scriptedResolver(['169.254.169.254'], ['127.0.0.1']);
    const invocation = { url: target.url('/hook', 'flip.example'), method: 'POST' as const };
    const first = await rejection(invokeHttpFunction('f', invocation, {}, options(GUARDED, { resolve: dns })));
    const second = await rejection(invokeHttpFunction('f', invocation, {}, options(GUARDED, { resolve: dns })));
    expect(first.message).toContain('resolves to 169.254.169.254');
    expect(second.message).toContain('resolves to 127.0.0.1');
    expect(dns.queries).toEqual(['flip.example', 'flip.example']);
    expect(target.connections).toBe(0);
  });

  test('a name answering a public and a private address at once is refused, and nothing connects', async () => {
    const dns = scriptedResolver(['93.184.216.34', '127.0.0.1']);
    const err = await rejection(
      invokeHttpFunction(
        'f',
        { url: target.url('/hook', 'two-faced.example'), method: 'POST' },
        {},
        options(GUARDED, { resolve: dns }),
      ),
    );
    expect(err.message).toBe(
      'Private IP blocked: host two-faced.example resolves to 127.0.0.1 (security.block_private_ips is on)',
    );
    expect(target.connections).toBe(0);
  });

  test('with the system resolver, localhost is refused at call time and no TCP connection reaches the server', async () => {
    const invocation = { url: target.url('/hook', 'localhost'), method: 'POST' as const };
    const err = await rejection(invokeHttpFunction('f', invocation, {}, options(GUARDED)));
    expect(err.code).toBe('url_validation_failed');
    expect(err.message).toMatch(/^Private IP blocked: host localhost resolves to (127\.0\.0\.1|::1) /);
    expect(target.connections).toBe(0);
  });

  test('a guarded call never reuses a keep-alive socket opened without the guard', async () => {
    target.respond((_req, res) => res.end('{"ok":true}'));
    const invocation = { url: target.url('/hook', 'localhost'), method: 'POST' as const };
    // Unguarded (block_private_ips off): Node's global agent keeps the socket open for reuse.
    await expect(invokeHttpFunction('f', invocation, {}, options(LOCAL))).resolves.toEqual({ result: { ok: true } });
    expect([target.connections, target.closed]).toEqual([1, 0]);

    const err = await rejection(invokeHttpFunction('f', invocation, {}, options(GUARDED)));
    expect(err.message).toMatch(/^Private IP blocked: host localhost/);
    expect(target.requests).toHaveLength(1);
    expect(target.connections).toBe(1);
  });
});

describe('HTTP-invoked functions through the engine, block_private_ips on', () => {
  let t: TestEngine;
  let target: Target;
  beforeEach(async () => {
    target = await new Target().start();
    t = await startEngine(
      { httpFunctions: { enabled: true, security: GUARDED } },
      { HOOK_TOKEN: 'tok', III_REDIS_URL: 'redis://:hunter2@redis:6379' },
    );
  });
  afterEach(async () => {
    await t.close();
    await target.stop();
  });

  test('a function at http://localhost registers (names are judged per call) and every call is refused with url_validation_failed', async () => {
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::local-name', {
      url: target.url('/hook', 'localhost'),
      method: 'POST',
      timeout_ms: 3000,
    });
    await functionRegistered(t.engine, 'ext::local-name');

    for (let i = 0; i < 2; i++) {
      const err = await failure(caller, 'ext::local-name', { i });
      expect(err).toMatchObject({
        code: 'url_validation_failed',
        message: expect.stringMatching(/Private IP blocked: host localhost resolves to /),
      });
    }
    expect(target.connections).toBe(0);
  });

  test.each(['2130706433', '0x7f.1', '017700000001', '[::ffff:7f00:1]'])(
    'http://%s (a spelling of 127.0.0.1) is refused at registration and never connected to',
    async (host) => {
      const owner = t.worker('owner');
      const caller = t.worker('caller');
      owner.registerFunction('ext::spelled', { url: `http://${host}:${target.port}/hook`, method: 'POST' });
      owner.registerFunction('local::control', async () => 'ok');
      await functionRegistered(t.engine, 'local::control');
      expect(t.engine.registry.pool('ext::spelled')).toHaveLength(0);
      await expect(failure(caller, 'ext::spelled', {})).resolves.toMatchObject({ code: 'function_not_found' });
      expect(target.connections).toBe(0);
    },
  );

  test('an auth block naming an engine variable (III_REDIS_URL) is refused: its value never leaves the engine', async () => {
    const owner = t.worker('owner');
    owner.registerFunction('ext::exfil', {
      url: target.url('/hook', 'localhost'),
      method: 'POST',
      auth: { type: 'bearer', token_key: 'III_REDIS_URL' },
    });
    owner.registerFunction('local::control', async () => 'ok');
    await functionRegistered(t.engine, 'local::control');
    expect(t.engine.registry.pool('ext::exfil')).toHaveLength(0);
    expect(target.connections).toBe(0);
  });
});

describe('HTTP-invoked functions through the engine, private IPs allowed (the loopback servers are reachable)', () => {
  let t: TestEngine;
  let target: Target;
  let elsewhere: Target;
  const MAX_MESSAGE_BYTES = 64 * 1024;
  beforeEach(async () => {
    target = await new Target().start();
    elsewhere = await new Target().start();
    const limits = { ...testConfig().limits, maxMessageBytes: MAX_MESSAGE_BYTES };
    const overrides: Partial<EngineConfig> = { httpFunctions: { enabled: true, security: LOCAL }, limits };
    t = await startEngine(overrides, { HOOK_TOKEN: 'tok' });
  });
  afterEach(async () => {
    await t.close();
    await Promise.all([target.stop(), elsewhere.stop()]);
  });

  test('a 302 is not followed: the caller gets a success without a result, and the Location server sees no connection', async () => {
    target.respond((_req, res) => {
      res.writeHead(302, { Location: elsewhere.url('/internal') });
      res.end();
    });
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::redirect', { url: target.url(), method: 'POST', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::redirect');

    await expect(caller.trigger({ function_id: 'ext::redirect', payload: {} })).resolves.toBeUndefined();
    expect(target.requests).toHaveLength(1);
    expect(elsewhere.connections).toBe(0);
  });

  test('a 307 with a JSON body: that body is the result, and the Location is not requested', async () => {
    target.respond((_req, res) => {
      res.writeHead(307, { Location: elsewhere.url('/internal'), 'Content-Type': 'application/json' });
      res.end('{"moved":true}');
    });
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::redirect307', { url: target.url(), method: 'PUT', timeout_ms: 3000 });
    await functionRegistered(t.engine, 'ext::redirect307');

    await expect(caller.trigger({ function_id: 'ext::redirect307', payload: {} })).resolves.toEqual({ moved: true });
    expect(elsewhere.connections).toBe(0);
  });

  test('a response larger than max_message_bytes fails with http_response_failed and the engine closes the socket', async () => {
    const written = { bytes: 0 };
    const capBytes = 64 * 1024 * 1024;
    target.respond((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      stream(res, Buffer.alloc(16 * 1024, 0x20), capBytes, written);
    });
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::huge', { url: target.url(), method: 'POST', timeout_ms: 10_000 });
    await functionRegistered(t.engine, 'ext::huge');

    const err = await failure(caller, 'ext::huge', {});
    expect(err).toMatchObject({
      code: 'http_response_failed',
      message: expect.stringContaining(`response larger than ${MAX_MESSAGE_BYTES} bytes`),
    });
    await waitFor(() => target.closed === 1, 'the server to see its socket closed');
    expect(written.bytes).toBeLessThan(capBytes);
  });

  test('a slow-drip body hits timeout_ms: http_response_failed, and the socket is closed', async () => {
    target.respond((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('[');
      drip(res, 20, () => res.write('0,'));
    });
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::drip', { url: target.url(), method: 'POST', timeout_ms: 300 });
    await functionRegistered(t.engine, 'ext::drip');

    const err = await failure(caller, 'ext::drip', {});
    expect(err).toMatchObject({
      code: 'http_response_failed',
      message: expect.stringContaining('timed out after 300 ms'),
    });
    await waitFor(() => target.closed === 1, 'the server to see its socket closed');
  });

  test("the caller's payload cannot set or replace request headers: it only ever becomes the body", async () => {
    target.respond((_req, res) => res.end('{}'));
    const owner = t.worker('owner');
    const caller = t.worker('caller');
    owner.registerFunction('ext::auth', {
      url: target.url(),
      method: 'POST',
      timeout_ms: 3000,
      headers: { 'x-team': 'a' },
      auth: { type: 'bearer', token_key: 'HOOK_TOKEN' },
    });
    await functionRegistered(t.engine, 'ext::auth');

    const hostile = {
      headers: { Authorization: 'Bearer evil', Host: 'metadata.internal' },
      Authorization: 'Bearer evil',
      'x-iii-Function-Path': 'other',
      url: elsewhere.url(),
      auth: { type: 'bearer', token_key: 'III_REDIS_URL' },
    };
    await caller.trigger({ function_id: 'ext::auth', payload: hostile });
    const [req] = target.requests;
    const named = (name: string) =>
      req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i].toLowerCase() === name).length;
    expect(req.headers['authorization']).toBe('Bearer tok');
    expect(named('authorization')).toBe(1);
    expect(req.headers['host']).toBe(`127.0.0.1:${target.port}`);
    expect(req.headers['x-iii-function-path']).toBe('ext::auth');
    expect(req.headers['x-team']).toBe('a');
    expect(elsewhere.connections).toBe(0);
  });
});

describe('response limits against misbehaving servers', () => {
  const MAX = 256 * 1024;

  test('chunked: a body growing past maxResponseBytes is cut off there, and the server sees the socket closed', async () => {
    const target = await new Target().start();
    try {
      const written = { bytes: 0 };
      const capBytes = 64 * 1024 * 1024;
      target.respond((_req, res) => {
        res.writeHead(200);
        stream(res, Buffer.alloc(16 * 1024, 0x20), capBytes, written);
      });
      const err = await rejection(
        invokeHttpFunction('f', { url: target.url(), method: 'POST' }, {}, options(LOCAL, { maxResponseBytes: MAX })),
      );
      expect(err.code).toBe('http_response_failed');
      expect(err.message).toBe(`HTTP response from ${target.url()} failed: response larger than ${MAX} bytes`);
      await waitFor(() => target.closed === 1, 'the server to see its socket closed');
      expect(written.bytes).toBeLessThan(capBytes);
    } finally {
      await target.stop();
    }
  });

  test('the engine-wide response budget: a call that would pass it fails and is cut off; once the other finishes, calls fit again', async () => {
    const slow = await new Target().start();
    const quick = await new Target().start();
    try {
      const budget = new ResponseBudget(100 * 1024);
      let finish: () => void = () => undefined;
      slow.respond((_req, res) => {
        res.writeHead(200);
        res.write(Buffer.alloc(80 * 1024, 0x20));
        finish = () => res.end('{"slow":true}');
      });
      quick.respond((_req, res) => {
        res.writeHead(200);
        res.end(`${' '.repeat(40 * 1024)}{"quick":true}`);
      });
      const opts = options(LOCAL, { responseBudget: budget });
      const first = invokeHttpFunction('f', { url: slow.url(), method: 'POST' }, {}, opts);
      await waitFor(() => budget.usedBytes >= 80 * 1024, 'the slow response to hold 80 KiB');

      const err = await rejection(invokeHttpFunction('f', { url: quick.url(), method: 'POST' }, {}, opts));
      expect(err.code).toBe('http_response_failed');
      expect(err.message).toContain('limit 102400 bytes');
      await waitFor(() => quick.closed === 1, 'the refused response to be cut off');

      finish();
      await expect(first).resolves.toEqual({ result: { slow: true } });
      expect(budget.usedBytes).toBe(0);
      await expect(invokeHttpFunction('f', { url: quick.url(), method: 'POST' }, {}, opts)).resolves.toEqual({
        result: { quick: true },
      });
      expect(budget.usedBytes).toBe(0);
    } finally {
      await Promise.all([slow.stop(), quick.stop()]);
    }
  });

  test('Content-Length: a body announced larger than maxResponseBytes is refused from the head, before the body is read', async () => {
    const target = await new Target().start();
    try {
      const written = { bytes: 0 };
      target.respond((_req, res) => {
        res.writeHead(200, { 'Content-Length': String(1024 * 1024 * 1024) });
        res.on('error', () => undefined);
        drip(res, 20, () => {
          written.bytes += 1024;
          res.write(Buffer.alloc(1024, 0x20));
        });
      });
      const err = await rejection(
        invokeHttpFunction('f', { url: target.url(), method: 'POST' }, {}, options(LOCAL, { maxResponseBytes: MAX })),
      );
      expect(err.message).toContain(`response larger than ${MAX} bytes`);
      await waitFor(() => target.closed === 1, 'the server to see its socket closed');
      expect(written.bytes).toBeLessThan(MAX);
    } finally {
      await target.stop();
    }
  });

  test('a response head dripped one line at a time hits timeout_ms: http_request_failed, socket closed', async () => {
    const target = await new RawTarget((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      drip(socket, 20, () => socket.write('x-drip: 1\r\n'));
    }).start();
    try {
      const err = await rejection(
        invokeHttpFunction('f', { url: target.url(), method: 'POST', timeout_ms: 300 }, {}, options(LOCAL)),
      );
      expect(err.code).toBe('http_request_failed');
      expect(err.message).toContain('timed out after 300 ms');
      await waitFor(() => target.closed === 1, 'the server to see its socket closed');
    } finally {
      await target.stop();
    }
  });

  test("a response head larger than Node's 16 KiB header limit → http_request_failed, socket closed", async () => {
    const target = await new RawTarget((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
    }).start();
    try {
      const err = await rejection(invokeHttpFunction('f', { url: target.url(), method: 'POST' }, {}, options(LOCAL)));
      expect(err.code).toBe('http_request_failed');
      expect(err.message).toMatch(/header/i);
      await waitFor(() => target.closed === 1, 'the server to see its socket closed');
    } finally {
      await target.stop();
    }
  });
});
