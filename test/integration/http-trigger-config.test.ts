import type { IIIClient } from 'iii-sdk';
import type { HttpModule } from '../../src/modules/http';
import { sleep, startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';

/**
 * The `iii-http` config block (iii-modules.md §5.1): timeouts, body limit, CORS, global
 * middleware and the concurrency limit, each on an engine started with that block.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

interface Http {
  t: TestEngine;
  worker: IIIClient;
  base: string;
  bind(path: string, handler: (req: Any) => Promise<unknown>, config?: Record<string, unknown>): Promise<void>;
}

async function startHttp(block: Record<string, unknown>): Promise<Http> {
  const config = testConfig();
  const http = config.modules.http;
  const t = await startEngine({
    modules: {
      ...config.modules,
      http: { ...http, enabled: true, config: { ...http?.config, port: 0, host: '127.0.0.1', ...block } },
    },
  });
  const worker = t.worker('http-config-tests');
  const base = `http://127.0.0.1:${t.engine.module<HttpModule>('iii-http')!.port}`;
  return {
    t,
    worker,
    base,
    async bind(path, handler, extra = {}) {
      const functionId = `cfg::${path}`;
      worker.registerFunction(functionId, handler);
      worker.registerTrigger({ type: 'http', function_id: functionId, config: { api_path: path, ...extra } });
      await waitFor(
        () => t.engine.registry.triggersOfType('http', 'live').some((b) => b.function_id === functionId),
        `route ${path}`,
      );
    },
  };
}

async function json(res: Response): Promise<Any> {
  return JSON.parse(await res.text());
}

describe('iii-http config', () => {
  describe('default_timeout (300 ms) and body_limit_bytes (1024)', () => {
    let h: Http;
    beforeAll(async () => {
      h = await startHttp({ default_timeout: 300, body_limit_bytes: 1024 });
      await h.bind('ok', async () => ({ body: 'ok' }));
    });
    afterAll(() => h.t.close());
    const stillServing = async () => expect(await json(await fetch(`${h.base}/ok`))).toBe('ok');

    test('a handler that never answers gets 504 with a TIMEOUT envelope naming it, and the node keeps serving', async () => {
      await h.bind('silent', () => new Promise(() => undefined));
      const res = await fetch(`${h.base}/silent`);
      expect(res.status).toBe(504);
      const body = await json(res);
      expect(body.error).toEqual({
        code: 'TIMEOUT',
        message: 'Request timed out after 300 ms (default_timeout) waiting for handler function cfg::silent',
        error_id: expect.any(String),
      });
      await stillServing();
    });

    test('a middleware that never answers gets 504 MIDDLEWARE_TIMEOUT', async () => {
      h.worker.registerFunction('cfg::stuck-mw', () => new Promise(() => undefined));
      let handled = 0;
      await h.bind('stuck', async () => (handled++, { body: 'x' }), { middleware_function_ids: ['cfg::stuck-mw'] });
      const res = await fetch(`${h.base}/stuck`);
      expect(res.status).toBe(504);
      expect((await json(res)).error).toMatchObject({ code: 'MIDDLEWARE_TIMEOUT', message: 'Middleware timeout' });
      expect(handled).toBe(0);
      await stillServing();
    });

    test('a body over body_limit_bytes answers 413 PAYLOAD_TOO_LARGE without invoking anything', async () => {
      let handled = 0;
      await h.bind('upload', async () => (handled++, { body: 'stored' }), { http_method: 'POST' });
      const res = await fetch(`${h.base}/upload`, { method: 'POST', body: 'x'.repeat(1025) });
      expect(res.status).toBe(413);
      expect(await json(res)).toEqual({
        error: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is larger than body_limit_bytes (1024 bytes)' },
      });
      expect(handled).toBe(0);
      const fits = await fetch(`${h.base}/upload`, { method: 'POST', body: 'x'.repeat(1024) });
      expect(await json(fits)).toBe('stored');
      expect(handled).toBe(1);
      await stillServing();
    });

    test('a chunked body (no content-length) over the limit is refused the same way', async () => {
      let handled = 0;
      await h.bind('chunked', async () => (handled++, { body: 'stored' }), { http_method: 'POST' });
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512));
          controller.close();
        },
      });
      const res = await fetch(`${h.base}/chunked`, { method: 'POST', body: chunks, duplex: 'half' });
      expect(res.status).toBe(413);
      expect(handled).toBe(0);
      await stillServing();
    });
  });

  describe('cors with a list of origins and methods', () => {
    let h: Http;
    beforeAll(async () => {
      h = await startHttp({ cors: { allowed_origins: ['https://good.example'], allowed_methods: ['GET', 'post'] } });
      await h.bind('data', async () => ({ body: 'data' }));
    });
    afterAll(() => h.t.close());

    test('an allowed origin is echoed on responses and preflights, with the configured methods', async () => {
      const res = await fetch(`${h.base}/data`, { headers: { origin: 'https://good.example' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('https://good.example');
      expect(res.headers.get('vary')).toBe('Origin');
      const preflight = await fetch(`${h.base}/data`, {
        method: 'OPTIONS',
        headers: { origin: 'https://good.example', 'access-control-request-method': 'GET' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST');
    });

    test('another origin gets no allow-origin header, on responses and preflights', async () => {
      const res = await fetch(`${h.base}/data`, { headers: { origin: 'https://evil.example' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${h.base}/data`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      expect(preflight.headers.get('access-control-allow-methods')).toBeNull();
    });
  });

  describe('global middleware', () => {
    let h: Http;
    const order: string[] = [];
    beforeAll(async () => {
      h = await startHttp({
        middleware: [
          { function_id: 'mw::second', priority: 20 },
          { function_id: 'mw::skipped', phase: 'onResponse', priority: 0 },
          { function_id: 'mw::first', priority: 10 },
        ],
      });
      for (const name of ['first', 'second', 'skipped']) {
        h.worker.registerFunction(`mw::${name}`, async (input: Any) => {
          order.push(name);
          if (name === 'second' && input.request.query_params.block === '1')
            return { action: 'respond', response: { status_code: 418, body: 'blocked' } };
          return { action: 'continue' };
        });
      }
      await h.bind('guarded', async () => (order.push('handler'), { body: 'through' }));
    });
    afterAll(() => h.t.close());

    test('preHandler entries run by ascending priority before the handler; other phases are skipped', async () => {
      order.length = 0;
      expect(await json(await fetch(`${h.base}/guarded`))).toBe('through');
      expect(order).toEqual(['first', 'second', 'handler']);
    });

    test('a global middleware that responds ends the request before the handler', async () => {
      order.length = 0;
      const res = await fetch(`${h.base}/guarded?block=1`);
      expect(res.status).toBe(418);
      expect(await json(res)).toBe('blocked');
      expect(order).toEqual(['first', 'second']);
    });

    test('an unmatched URL is answered 404 without running global middleware', async () => {
      order.length = 0;
      expect((await fetch(`${h.base}/nowhere`)).status).toBe(404);
      expect(order).toEqual([]);
    });
  });

  describe('concurrency_request_limit 2', () => {
    let h: Http;
    beforeAll(async () => {
      h = await startHttp({ concurrency_request_limit: 2 });
    });
    afterAll(() => h.t.close());

    test('excess requests wait for a slot (server-wide, across routes) instead of being refused', async () => {
      let running = 0;
      let peak = 0;
      const slow = async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(100);
        running--;
        return { body: 'done' };
      };
      await h.bind('a', slow);
      await h.bind('b', slow);
      const responses = await Promise.all([...Array(6)].map((_, i) => fetch(`${h.base}/${i % 2 ? 'a' : 'b'}`)));
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(peak).toBe(2);
    });
  });

  /** A handler that holds its request until `open` is called; `entered` counts calls. */
  function gated(): { handler: () => Promise<unknown>; open: () => void; entered: () => number } {
    let entered = 0;
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    return {
      handler: async () => {
        entered++;
        await gate;
        return { body: 'done' };
      },
      open: () => open(),
      entered: () => entered,
    };
  }

  const queuedRefusals = async (h: Http): Promise<number> =>
    (await h.t.engine.metrics.limitRefusals.get()).values.find((v) => v.labels.limit === 'iii-http.max_queued_requests')
      ?.value ?? 0;
  const queued = (h: Http): number => h.t.engine.module<HttpModule>('iii-http')!.queuedRequests;

  describe('max_queued_requests 1 (concurrency_request_limit 1)', () => {
    let h: Http;
    beforeAll(async () => {
      h = await startHttp({ concurrency_request_limit: 1, max_queued_requests: 1 });
    });
    afterAll(() => h.t.close());

    test('a request beyond the waiting line is answered 503 SERVER_BUSY with Retry-After: 1; the running and waiting ones complete', async () => {
      const held = gated();
      await h.bind('held', held.handler);
      try {
        const running = fetch(`${h.base}/held`);
        await waitFor(() => held.entered() === 1, 'first request running');
        const waiting = fetch(`${h.base}/held`);
        await waitFor(() => queued(h) === 1, 'second request waiting');
        const refused = await fetch(`${h.base}/held`);
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBe('1');
        expect(await json(refused)).toEqual({
          error: {
            code: 'SERVER_BUSY',
            message:
              'Server busy: all 1 request slots (concurrency_request_limit) are taken and 1 requests are already waiting ' +
              '(iii-http.max_queued_requests = 1); retry later',
          },
        });
        expect(await queuedRefusals(h)).toBe(1);
        held.open();
        expect((await Promise.all([running, waiting])).map((r) => r.status)).toEqual([200, 200]);
        expect(held.entered()).toBe(2);
        expect(queued(h)).toBe(0);
      } finally {
        held.open();
      }
    });
    test('a waiting request whose client leaves gives its place in the line back', async () => {
      const held = gated();
      await h.bind('held-again', held.handler);
      try {
        const running = fetch(`${h.base}/held-again`);
        await waitFor(() => held.entered() === 1, 'first request running');
        const leaving = new AbortController();
        const left = fetch(`${h.base}/held-again`, { signal: leaving.signal }).catch((err: Error) => err.name);
        await waitFor(() => queued(h) === 1, 'second request waiting');
        leaving.abort();
        expect(await left).toBe('AbortError');
        await waitFor(() => queued(h) === 0, 'the place given back');
        const waiting = fetch(`${h.base}/held-again`);
        await waitFor(() => queued(h) === 1, 'third request waiting, not refused');
        held.open();
        expect((await Promise.all([running, waiting])).map((r) => r.status)).toEqual([200, 200]);
        expect(held.entered()).toBe(2);
      } finally {
        held.open();
      }
    });
  });

  describe('max_queued_requests 0 (concurrency_request_limit 1)', () => {
    let h: Http;
    beforeAll(async () => {
      h = await startHttp({ concurrency_request_limit: 1, max_queued_requests: 0 });
    });
    afterAll(() => h.t.close());

    test('nothing waits: with the slot busy a request is refused at once, and served once the slot is free', async () => {
      const held = gated();
      await h.bind('busy', held.handler);
      await h.bind('free', async () => ({ body: 'free' }));
      try {
        const running = fetch(`${h.base}/busy`);
        await waitFor(() => held.entered() === 1, 'first request running');
        const refused = await fetch(`${h.base}/free`);
        expect(refused.status).toBe(503);
        expect((await json(refused)).error.code).toBe('SERVER_BUSY');
        expect(await queuedRefusals(h)).toBe(1);
        held.open();
        expect((await running).status).toBe(200);
        expect(await json(await fetch(`${h.base}/free`))).toBe('free');
      } finally {
        held.open();
      }
    });
  });
});
