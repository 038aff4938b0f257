import net from 'node:net';
import WebSocket from 'ws';
import type { IIIClient } from 'iii-sdk';
import type { HttpModule } from '../../src/modules/http';
import { RawClient } from '../support/raw-client';
import { sleep, startEngine, waitFor, type TestEngine } from '../support/engine';

/**
 * The `http` trigger type (iii-modules.md §5) end to end: real iii-sdk workers bind functions to
 * routes, real `fetch` calls the server.
 */

// Requests and results are plain JSON; the tests read them loosely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

interface SdkChannelReader {
  readAll(): Promise<Buffer>;
}
interface SdkChannelWriter {
  sendMessage(text: string): void;
  stream: NodeJS.WritableStream;
}

describe('http trigger type', () => {
  let t: TestEngine;
  let worker: IIIClient;
  let base: string;
  let seq = 0;

  beforeAll(async () => {
    t = await startEngine();
    worker = t.worker('http-tests');
    base = `http://127.0.0.1:${t.engine.module<HttpModule>('iii-http')!.port}`;
  });
  afterAll(async () => {
    await t.close();
  });

  /** A fresh function id (each test binds its own routes on the shared engine). */
  const fid = (name: string) => `http-test::${name}-${++seq}`;

  function liveRoute(functionId: string): Promise<true> {
    return waitFor(
      () => t.engine.registry.triggersOfType('http', 'live').some((b) => b.function_id === functionId),
      `http route for ${functionId}`,
    );
  }

  /** Registers `handler` and binds it to `config`; resolves once the route is served. */
  async function bind(
    config: Record<string, unknown>,
    handler: (req: Any, metadata?: unknown) => Promise<unknown>,
    metadata?: Record<string, unknown>,
  ) {
    const functionId = fid('route');
    worker.registerFunction(functionId, handler);
    const trigger = worker.registerTrigger({
      type: 'http',
      function_id: functionId,
      config,
      ...(metadata ? { metadata } : {}),
    });
    await liveRoute(functionId);
    return { functionId, trigger };
  }

  async function json(res: Response): Promise<Any> {
    return JSON.parse(await res.text());
  }

  describe('routing', () => {
    test('path params (percent-decoded), query params, lower-case headers and the registered path reach the handler', async () => {
      let seen: Any;
      await bind(
        { api_path: '/users/:id/posts/:post', http_method: 'GET' },
        async (req) => ((seen = req), { body: 'ok' }),
      );
      const res = await fetch(`${base}/users/a%20b/posts/7?q=x%20y&q=last&flag`, { headers: { 'X-Custom': 'Value' } });
      expect(res.status).toBe(200);
      expect(seen.path_params).toEqual({ id: 'a b', post: '7' });
      expect(seen.query_params).toEqual({ q: 'last', flag: '' });
      expect(seen.headers['x-custom']).toBe('Value');
      expect(seen.path).toBe('/users/:id/posts/:post');
      expect(seen.method).toBe('GET');
      expect(seen.body).toBeNull();
      expect(seen.trigger).toEqual({ type: 'http', path: '/users/:id/posts/:post', method: 'GET' });
    });

    test('the leading slash is optional and http_method is case-insensitive', async () => {
      await bind({ api_path: 'no-slash/here', http_method: 'post' }, async () => ({
        status_code: 201,
        body: { made: true },
      }));
      const res = await fetch(`${base}/no-slash/here`, { method: 'POST' });
      expect(res.status).toBe(201);
      expect(await json(res)).toEqual({ made: true });
    });

    test('a static segment beats a parameter at the same position', async () => {
      await bind({ api_path: '/prio/:id' }, async (req) => ({ body: { by: 'param', id: req.path_params.id } }));
      await bind({ api_path: '/prio/me' }, async () => ({ body: { by: 'static' } }));
      expect(await json(await fetch(`${base}/prio/me`))).toEqual({ by: 'static' });
      expect(await json(await fetch(`${base}/prio/42`))).toEqual({ by: 'param', id: '42' });
    });

    test('an unknown path answers the 404 envelope NOT_FOUND', async () => {
      const res = await fetch(`${base}/nothing/here`);
      expect(res.status).toBe(404);
      expect(await json(res)).toEqual({ error: { code: 'NOT_FOUND', message: 'Not Found' } });
    });

    test('a path bound only to other methods answers 405 METHOD_NOT_ALLOWED with an Allow header', async () => {
      await bind({ api_path: '/only-post', http_method: 'POST' }, async () => ({ body: 1 }));
      const res = await fetch(`${base}/only-post`, { method: 'DELETE' });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect((await json(res)).error.code).toBe('METHOD_NOT_ALLOWED');
    });

    test('a GET route answers HEAD with its status and headers but no body', async () => {
      let method = '';
      await bind(
        { api_path: '/headable' },
        async (req) => ((method = req.method), { headers: { 'x-kind': 'head' }, body: { big: 'body' } }),
      );
      const res = await fetch(`${base}/headable`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-kind')).toBe('head');
      expect(await res.text()).toBe('');
      expect(method).toBe('HEAD');
    });

    test('re-registering a route key makes the newer binding win; unregistering the older keeps the newer', async () => {
      const older = await bind({ api_path: '/contested' }, async () => ({ body: 'older' }));
      expect(await json(await fetch(`${base}/contested`))).toBe('older');
      const newer = await bind({ api_path: 'contested', http_method: 'get' }, async () => ({ body: 'newer' }));
      expect(await json(await fetch(`${base}/contested`))).toBe('newer');
      older.trigger.unregister();
      await waitFor(
        () => !t.engine.registry.triggersOfType('http').some((b) => b.function_id === older.functionId),
        'older binding removed',
      );
      expect(await json(await fetch(`${base}/contested`))).toBe('newer');
      newer.trigger.unregister();
      await waitFor(
        async () => (await fetch(`${base}/contested`)).status === 404,
        'route gone after the newer binding left',
      );
    });
  });

  describe('registration errors reach the worker as triggerregistrationresult', () => {
    let raw: RawClient;
    beforeAll(async () => {
      raw = await RawClient.connect(t.url);
      await raw.registered();
      raw.send({ type: 'registerfunction', id: 'raw::handler' });
    });
    afterAll(() => raw.close());

    async function refusal(id: string, config: Record<string, unknown>): Promise<Any> {
      raw.send({ type: 'registertrigger', id, trigger_type: 'http', function_id: 'raw::handler', config });
      const result = await raw.next((m) => m.type === 'triggerregistrationresult' && m.id === id);
      return result.error;
    }

    test('an unsupported http_method is refused with the list of methods', async () => {
      const error = await refusal('bad-method', { api_path: '/x', http_method: 'BREW' });
      expect(error.code).toBe('trigger_registration_failed');
      expect(error.message).toMatch(/BREW.*GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS/);
    });

    test('a missing api_path is refused', async () => {
      const error = await refusal('no-path', { http_method: 'GET' });
      expect(error.message).toBe('api_path is required for http triggers');
    });

    test('the same method and shape with other parameter names conflicts; the first route keeps serving', async () => {
      await bind({ api_path: '/conflict/:x' }, async (req) => ({ body: req.path_params }));
      const error = await refusal('conflicting', { api_path: '/conflict/:y' });
      expect(error.message).toMatch(/GET \/conflict\/:y .*conflicts with already-registered route GET \/conflict\/:x/);
      expect(await json(await fetch(`${base}/conflict/1`))).toEqual({ x: '1' });
    });
  });

  describe('request bodies', () => {
    test('a JSON body is parsed; invalid JSON gives null', async () => {
      const bodies: unknown[] = [];
      await bind({ api_path: '/json', http_method: 'POST' }, async (req) => (bodies.push(req.body), { body: null }));
      await fetch(`${base}/json`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"a":[1,2]}',
      });
      await fetch(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
      expect(bodies).toEqual([{ a: [1, 2] }, null]);
    });

    test('a url-encoded form becomes an object of its fields', async () => {
      let body: unknown;
      await bind({ api_path: '/form', http_method: 'POST' }, async (req) => ((body = req.body), { body: null }));
      await fetch(`${base}/form`, { method: 'POST', body: new URLSearchParams({ name: 'Ada L', lang: 'en' }) });
      expect(body).toEqual({ name: 'Ada L', lang: 'en' });
    });

    test('a multipart form becomes {fields, files} with base64 file data', async () => {
      let body: Any;
      await bind({ api_path: '/upload', http_method: 'POST' }, async (req) => ((body = req.body), { body: null }));
      const form = new FormData();
      form.append('title', 'report');
      form.append('doc', new Blob([Buffer.from('hello file')], { type: 'text/plain' }), 'a.txt');
      await fetch(`${base}/upload`, { method: 'POST', body: form });
      expect(body).toEqual({
        fields: { title: 'report' },
        files: [
          {
            field: 'doc',
            filename: 'a.txt',
            content_type: 'text/plain',
            size: 10,
            data_base64: Buffer.from('hello file').toString('base64'),
          },
        ],
      });
    });

    test('any other body is null in the request and readable as raw bytes on the request_body channel', async () => {
      await bind({ api_path: '/raw', http_method: 'PUT' }, async (req) => {
        const bytes = await (req.request_body as SdkChannelReader).readAll();
        return { body: { body: req.body, raw: bytes.toString('utf8') } };
      });
      const res = await fetch(`${base}/raw`, {
        method: 'PUT',
        headers: { 'content-type': 'text/plain' },
        body: 'plain text ✓',
      });
      expect(await json(res)).toEqual({ body: null, raw: 'plain text ✓' });
      // Larger than one 64 KiB channel frame: the bytes arrive whole and in order.
      const big = Buffer.alloc(200 * 1024, 'abcdefgh');
      const bigRes = await fetch(`${base}/raw`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: big,
      });
      expect((await json(bigRes)).raw).toBe(big.toString('utf8'));
    });

    test('the handler receives the request object exactly as on the wire, with channel refs and trigger metadata', async () => {
      const raw = await RawClient.connect(t.url);
      try {
        await raw.registered();
        raw.send({ type: 'registerfunction', id: 'raw::shape' });
        raw.send({
          type: 'registertrigger',
          id: 'shape-trigger',
          trigger_type: 'http',
          function_id: 'raw::shape',
          config: { api_path: '/shape/:id', http_method: 'POST' },
          metadata: { team: 'a' },
        });
        await liveRoute('raw::shape');
        const pending = fetch(`${base}/shape/9?x=1`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"v":1}',
        });
        const call = await raw.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::shape');
        const ref = { channel_id: expect.any(String), access_key: expect.any(String) };
        expect(call.metadata).toEqual({ team: 'a' });
        expect(call.data).toEqual({
          query_params: { x: '1' },
          path_params: { id: '9' },
          headers: expect.objectContaining({ 'content-type': 'application/json' }),
          path: '/shape/:id',
          method: 'POST',
          body: { v: 1 },
          trigger: { type: 'http', path: '/shape/:id', method: 'POST' },
          request_body: { ...ref, direction: 'read' },
          response: { ...ref, direction: 'write' },
        });
        raw.send({
          type: 'invocationresult',
          invocation_id: call.invocation_id,
          function_id: 'raw::shape',
          result: { status_code: 202, body: 'done' },
        });
        const res = await pending;
        expect(res.status).toBe(202);
      } finally {
        raw.close();
      }
    });
  });

  describe('buffered responses', () => {
    test('status, object headers and a JSON body; a missing body is {}', async () => {
      await bind({ api_path: '/buffered' }, async () => ({ status_code: 203, headers: { 'X-One': '1', 'x-skip': 5 } }));
      const res = await fetch(`${base}/buffered`);
      expect(res.status).toBe(203);
      expect(res.headers.get('x-one')).toBe('1');
      expect(res.headers.get('x-skip')).toBeNull();
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.text()).toBe('{}');
    });

    test("array headers and a string body with the handler's content-type go out raw", async () => {
      await bind({ api_path: '/text' }, async () => ({
        headers: ['Content-Type: text/html', 'X-Two: 2', 'bad header'],
        body: '<p>hi</p>',
      }));
      const res = await fetch(`${base}/text`);
      expect(res.headers.get('content-type')).toBe('text/html');
      expect(res.headers.get('x-two')).toBe('2');
      expect(await res.text()).toBe('<p>hi</p>');
    });

    test('a non-JSON content-type with an object body sends its JSON text; an invalid status is 200', async () => {
      await bind({ api_path: '/texty' }, async () => ({
        status_code: 42,
        headers: { 'content-type': 'text/plain' },
        body: { a: 1 },
      }));
      const res = await fetch(`${base}/texty`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain');
      expect(await res.text()).toBe('{"a":1}');
    });
  });

  describe('streamed responses through the response channel', () => {
    test('set_status and set_headers, then binary chunks as the body', async () => {
      await bind({ api_path: '/stream' }, async (req) => {
        const res = req.response as SdkChannelWriter;
        res.sendMessage(JSON.stringify({ type: 'set_status', status_code: 206 }));
        res.sendMessage(
          JSON.stringify({ type: 'set_headers', headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' } }),
        );
        res.stream.write(Buffer.from('part one, '));
        res.stream.end(Buffer.from('part two'));
        return null;
      });
      const res = await fetch(`${base}/stream`);
      expect(res.status).toBe(206);
      expect(res.headers.get('x-streamed')).toBe('yes');
      expect(await res.text()).toBe('part one, part two');
    });

    test('server-sent events written with delays arrive at the client one by one, before the stream ends', async () => {
      const gapMs = 150;
      await bind({ api_path: '/events' }, async (req) => {
        const res = req.response as SdkChannelWriter;
        res.sendMessage(
          JSON.stringify({
            type: 'set_headers',
            headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
          }),
        );
        for (let i = 1; i <= 3; i++) {
          res.stream.write(Buffer.from(`data: event ${i}\n\n`));
          await sleep(gapMs);
        }
        res.stream.end();
        return null;
      });
      const res = await fetch(`${base}/events`);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const reader = res.body!.getReader();
      const arrivals: Array<{ text: string; at: number }> = [];
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arrivals.push({ text: decoder.decode(value), at: Date.now() });
      }
      expect(arrivals.map((a) => a.text).join('')).toBe('data: event 1\n\ndata: event 2\n\ndata: event 3\n\n');
      // Incremental: the first event was in the client's hands well before the last was written.
      const first = arrivals.find((a) => a.text.includes('event 1'))!;
      const last = arrivals.find((a) => a.text.includes('event 3'))!;
      expect(last.at - first.at).toBeGreaterThanOrEqual(gapMs);
    });

    test("a client that leaves mid-stream closes the channel, so the worker's writes stop", async () => {
      let isClosed = false;
      let writerClosed!: () => void;
      const closed = new Promise<void>((resolve) => (writerClosed = () => ((isClosed = true), resolve())));
      await bind({ api_path: '/endless' }, async (req) => {
        const res = req.response as SdkChannelWriter & {
          stream: NodeJS.WritableStream & { on(e: 'close', f: () => void): void };
        };
        res.stream.on('close', writerClosed);
        res.stream.on('error', () => undefined);
        const timer = setInterval(() => res.stream.write(Buffer.from('data: tick\n\n')), 20);
        await closed;
        clearInterval(timer);
        return null;
      });
      const controller = new AbortController();
      const res = await fetch(`${base}/endless`, { signal: controller.signal });
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: tick');
      controller.abort();
      await waitFor(() => isClosed, "the worker's response writer closed");
    });

    test('a non-null result returned before any body chunk wins over the channel', async () => {
      await bind({ api_path: '/both' }, async (req) => {
        (req.response as SdkChannelWriter).sendMessage(JSON.stringify({ type: 'set_status', status_code: 500 }));
        return { status_code: 200, body: 'buffered' };
      });
      const res = await fetch(`${base}/both`);
      expect(res.status).toBe(200);
      expect(await json(res)).toBe('buffered');
    });
  });

  describe('pipeline', () => {
    test("a handler error answers 500 with the function's code and message and an error_id", async () => {
      await bind({ api_path: '/fails' }, async () => {
        throw new Error('database is down');
      });
      const res = await fetch(`${base}/fails`);
      expect(res.status).toBe(500);
      const body = await json(res);
      expect(body.error).toEqual({
        code: 'invocation_failed',
        message: 'database is down',
        error_id: expect.stringMatching(/^[0-9a-f]{16}$/),
      });
    });

    test('a condition returning false answers 422 CONDITION_NOT_MET with skipped:true and the handler is not called', async () => {
      const condition = fid('condition');
      const seen: unknown[] = [];
      worker.registerFunction(condition, async (req: Any) => (seen.push(req), req.query_params.allow === 'yes'));
      let handled = 0;
      await bind({ api_path: '/guarded', condition_function_id: condition }, async () => (handled++, { body: 'in' }));
      const refused = await fetch(`${base}/guarded?allow=no`);
      expect(refused.status).toBe(422);
      expect(await json(refused)).toEqual({
        error: { code: 'CONDITION_NOT_MET', message: 'Request condition not met' },
        skipped: true,
      });
      expect(handled).toBe(0);
      expect(await json(await fetch(`${base}/guarded?allow=yes`))).toBe('in');
      expect(handled).toBe(1);
      // The condition sees the request without the channel refs.
      expect(seen[0]).not.toHaveProperty('request_body');
      expect(seen[0]).toMatchObject({ path: '/guarded', method: 'GET' });
    });

    test('a failing condition answers 500 with its error', async () => {
      const condition = fid('bad-condition');
      worker.registerFunction(condition, async () => {
        throw new Error('condition broke');
      });
      await bind({ api_path: '/bad-guard', condition_function_id: condition }, async () => ({ body: 'in' }));
      const res = await fetch(`${base}/bad-guard`);
      expect(res.status).toBe(500);
      expect((await json(res)).error).toMatchObject({ code: 'invocation_failed', message: 'condition broke' });
    });

    test('route middleware runs in order: continue passes on, respond answers as JSON with its headers', async () => {
      const calls: Any[] = [];
      const pass = fid('mw-pass');
      const gate = fid('mw-gate');
      worker.registerFunction(pass, async (input: Any) => (calls.push(['pass', input]), { action: 'continue' }));
      worker.registerFunction(gate, async (input: Any) => {
        calls.push(['gate', input]);
        return input.request.headers.authorization === 'Bearer ok'
          ? { action: 'continue' }
          : {
              action: 'respond',
              response: {
                status_code: 401,
                body: { error: 'unauthorized' },
                headers: { 'www-authenticate': 'Bearer' },
              },
            };
      });
      let handled = 0;
      await bind(
        { api_path: '/mw/:id', middleware_function_ids: [pass, gate] },
        async () => (handled++, { body: 'secret' }),
      );
      const denied = await fetch(`${base}/mw/5?q=1`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toBe('Bearer');
      expect(denied.headers.get('content-type')).toBe('application/json');
      expect(await json(denied)).toEqual({ error: 'unauthorized' });
      expect(handled).toBe(0);
      expect(calls.map(([name]) => name)).toEqual(['pass', 'gate']);
      expect(calls[0][1]).toEqual({
        phase: 'preHandler',
        request: { path_params: { id: '5' }, query_params: { q: '1' }, headers: expect.any(Object), method: 'GET' },
        context: {},
      });
      const allowed = await fetch(`${base}/mw/5`, { headers: { authorization: 'Bearer ok' } });
      expect(await json(allowed)).toBe('secret');
    });

    test('a failing middleware answers 500 with its error and an error_id', async () => {
      const broken = fid('mw-broken');
      worker.registerFunction(broken, async () => {
        throw new Error('middleware exploded');
      });
      await bind({ api_path: '/mw-broken', middleware_function_ids: [broken] }, async () => ({ body: 'unreachable' }));
      const res = await fetch(`${base}/mw-broken`);
      expect(res.status).toBe(500);
      expect((await json(res)).error).toEqual({
        code: 'invocation_failed',
        message: 'middleware exploded',
        error_id: expect.any(String),
      });
    });

    test('CORS is permissive without a cors block: any origin, preflight answered 204', async () => {
      await bind({ api_path: '/cors', http_method: 'PUT' }, async () => ({ body: 'x' }));
      const preflight = await fetch(`${base}/cors`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'PUT',
          'access-control-request-headers': 'x-token',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
      expect(preflight.headers.get('access-control-allow-methods')).toBe('PUT');
      expect(preflight.headers.get('access-control-allow-headers')).toBe('x-token');
      const res = await fetch(`${base}/cors`, { method: 'PUT', headers: { origin: 'https://app.example' } });
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
    });
  });

  describe('the node keeps serving after bad input', () => {
    let ping: string;
    beforeAll(async () => {
      await bind({ api_path: '/ping' }, async () => ({ body: 'pong' }));
      ping = `${base}/ping`;
    });
    const stillServing = async () => expect(await json(await fetch(ping))).toBe('pong');

    test('a path parameter that is not valid percent-encoding answers 400 BAD_REQUEST', async () => {
      await bind({ api_path: '/decode/:v' }, async (req) => ({ body: req.path_params }));
      const res = await fetch(`${base}/decode/%zz`);
      expect(res.status).toBe(400);
      expect((await json(res)).error).toEqual({
        code: 'BAD_REQUEST',
        message: 'Path segment "%zz" is not valid percent-encoding',
      });
      await stillServing();
    });

    test('a request line that is not HTTP is answered 400 by the parser', async () => {
      const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
      socket.write('NOT HTTP AT ALL\r\n\r\n');
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      await stillServing();
    });

    test('request headers over 16 KiB are answered 431', async () => {
      const res = await fetch(ping, { headers: { 'x-huge': 'a'.repeat(20 * 1024) } });
      expect(res.status).toBe(431);
      await stillServing();
    });

    test('a response channel whose writer vanishes before sending a body answers 500 channel_send_failed, not an empty 200', async () => {
      const raw = await RawClient.connect(t.url);
      try {
        await raw.registered();
        raw.send({ type: 'registerfunction', id: 'raw::vanishing-stream' });
        raw.send({
          type: 'registertrigger',
          id: 'vanishing-trigger',
          trigger_type: 'http',
          function_id: 'raw::vanishing-stream',
          config: { api_path: '/vanishing' },
        });
        await liveRoute('raw::vanishing-stream');
        const pending = fetch(`${base}/vanishing`);
        const call = await raw.next((m) => m.type === 'invokefunction' && m.function_id === 'raw::vanishing-stream');
        const ref = (call.data as Any).response;
        const writer = new WebSocket(
          `${t.url}/ws/channels/${ref.channel_id}?key=${encodeURIComponent(ref.access_key)}&dir=write`,
        );
        await new Promise((resolve) => writer.once('open', resolve));
        writer.send(JSON.stringify({ type: 'set_status', status_code: 201 }));
        raw.send({
          type: 'invocationresult',
          invocation_id: call.invocation_id,
          function_id: 'raw::vanishing-stream',
          result: null,
        });
        await sleep(50); // the engine has connected its reader and read the control frame
        writer.terminate();
        const res = await pending;
        expect(res.status).toBe(500);
        expect((await json(res)).error).toMatchObject({ code: 'channel_send_failed', error_id: expect.any(String) });
      } finally {
        raw.close();
      }
      await stillServing();
    });

    test('a worker that disconnects mid-request makes it answer 500 with the error', async () => {
      const leaving = t.worker('leaving');
      const functionId = fid('leaving');
      let entered!: () => void;
      const inHandler = new Promise<void>((resolve) => (entered = resolve));
      leaving.registerFunction(functionId, async () => {
        entered();
        return new Promise(() => undefined);
      });
      leaving.registerTrigger({ type: 'http', function_id: functionId, config: { api_path: '/leaving' } });
      await liveRoute(functionId);
      const pending = fetch(`${base}/leaving`);
      await inHandler;
      await leaving.shutdown();
      const res = await pending;
      expect(res.status).toBe(500);
      expect((await json(res)).error).toMatchObject({ code: 'invocation_stopped', error_id: expect.any(String) });
      await stillServing();
    });
  });

  describe("channel lifetime: every request's two channels are freed when its exchange ends", () => {
    /** Channels live in the engine now, once the previous tests' exchanges have wound down. */
    async function settledChannelCount(): Promise<number> {
      let last = -1;
      await waitFor(() => {
        const now = t.engine.channels.size;
        const stable = now === last;
        last = now;
        return stable;
      }, 'the channel count to settle');
      return last;
    }

    test('after 300 buffered responses the engine holds no more channels than before', async () => {
      await bind({ api_path: '/no-leak/:n' }, async (req) => ({ body: { n: req.path_params.n } }));
      const baseline = await settledChannelCount();
      for (let batch = 0; batch < 10; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 30 }, async (_, i) => {
            const res = await fetch(`${base}/no-leak/${batch * 30 + i}`);
            return (await json(res)).n;
          }),
        );
        expect(answers).toEqual(Array.from({ length: 30 }, (_, i) => String(batch * 30 + i)));
      }
      await waitFor(() => t.engine.channels.size === baseline, `channels back to the baseline of ${baseline}`);
    });

    test('a request body read by the worker and a streamed (SSE) response still work, and free their channels', async () => {
      await bind({ api_path: '/echo-events', http_method: 'POST' }, async (req) => {
        const bytes = await (req.request_body as SdkChannelReader).readAll();
        const res = req.response as SdkChannelWriter;
        res.sendMessage(JSON.stringify({ type: 'set_headers', headers: { 'content-type': 'text/event-stream' } }));
        for (const line of bytes.toString('utf8').split(',')) {
          res.stream.write(Buffer.from(`data: ${line}\n\n`));
          await sleep(10);
        }
        res.stream.end();
        return null;
      });
      const baseline = await settledChannelCount();
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${base}/echo-events`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: `a${i},b${i},c${i}`,
        });
        expect(res.headers.get('content-type')).toBe('text/event-stream');
        expect(await res.text()).toBe(`data: a${i}\n\ndata: b${i}\n\ndata: c${i}\n\n`);
      }
      await waitFor(() => t.engine.channels.size === baseline, `channels back to the baseline of ${baseline}`);
    });

    test('a handler that starts writing to the response channel but answers with a value frees it too', async () => {
      let writersClosed = 0;
      await bind({ api_path: '/touch-then-answer' }, async (req) => {
        const res = req.response as SdkChannelWriter & { stream: { on(e: 'close', f: () => void): void } };
        // Without an 'error' listener: a refused late connection would surface as an unhandled error.
        res.stream.on('close', () => writersClosed++);
        res.sendMessage(JSON.stringify({ type: 'set_status', status_code: 500 }));
        return { body: 'buffered' };
      });
      const baseline = await settledChannelCount();
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${base}/touch-then-answer`);
        expect(res.status).toBe(200);
        expect(await json(res)).toBe('buffered');
      }
      // Each worker-side writer connected (before or after the response) and was closed by the engine.
      await waitFor(() => writersClosed === 20, 'the 20 response writers to be closed');
      await waitFor(() => t.engine.channels.size === baseline, `channels back to the baseline of ${baseline}`);
    });
  });
});
