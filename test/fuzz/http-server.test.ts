import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import type { HttpModule } from '../../src/modules/http';
import { startEngine, testConfig, waitFor, type TestEngine } from '../support/engine';
import { FUZZ_ROUTES, fuzzRequest, rawRequest, type FuzzRequest } from './arbitraries/http-requests';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';

/**
 * The `iii-http` port over real sockets, 16,000 requests: a real engine, routes served by a
 * real iii-sdk worker, 14,000 well-formed but odd requests (32 at a time on keep-alive
 * connections) and 2,000 malformed ones on raw sockets. Every request is answered with a known
 * status (error statuses with the JSON envelope), a normal request works after every batch,
 * and no call or channel is left behind.
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

/** Statuses the server may answer; anything else is a bug. */
const KNOWN_STATUSES = new Set([200, 204, 400, 404, 405, 413, 431, 500]);
/** Node's own answers, before our code sees the request: 100 Continue, and refusals of what it cannot parse. */
const PARSER_STATUSES = new Set([100, 400, 413, 417, 431, 501, 505]);
/** Well-formed requests fired at once per batch (the keep-alive agent's socket count). */
const BATCH = 32;
/** Raw connections opened at once per batch. */
const RAW_BATCH = 50;
/** Longest wait for one answer, in ms (the fuzz engine's request timeout is 3 s). */
const ANSWER_TIMEOUT_MS = 15_000;

/** Headers that frame the message or the connection: the raw-socket requests cover those. */
const FRAMING_HEADERS = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'expect',
  'host',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
  'content-type',
]);

interface Answer {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

describe('HTTP server fuzzing over real sockets (16,000 requests)', () => {
  let t: TestEngine;
  let port: number;
  let agent: http.Agent;
  let baselineChannels: number;

  beforeAll(async () => {
    const base = testConfig();
    const httpModule = base.modules['http'];
    t = await startEngine({
      modules: {
        ...base.modules,
        http: {
          ...httpModule,
          config: { ...httpModule.config, host: '127.0.0.1', body_limit_bytes: 4096, default_timeout: 3000 },
        },
      },
    });
    port = t.engine.module<HttpModule>('iii-http')!.port;
    agent = new http.Agent({ keepAlive: true, maxSockets: BATCH });
    const worker = t.worker('http-fuzz');
    type Req = { path_params: Record<string, string>; body: unknown };
    const handlers: Record<(typeof FUZZ_ROUTES)[number][1], (req: Req) => unknown> = {
      '/items/:id': (req) => ({ status_code: 200, body: { id: req.path_params['id'], type: typeof req.body } }),
      '/upload': () => ({ status_code: 200, body: { ok: true } }),
      '/a/b/c': () => ({ status_code: 200, body: 'static' }),
      '/items/:id/sub/:sub': (req) => ({ status_code: 200, body: req.path_params }),
      '/boom': () => {
        throw new Error('boom');
      },
    };
    FUZZ_ROUTES.forEach(([method, apiPath], i) => {
      const functionId = `http-fuzz::route-${i}`;
      worker.registerFunction(functionId, async (req: Req) => handlers[apiPath](req));
      worker.registerTrigger({
        type: 'http',
        function_id: functionId,
        config: { api_path: apiPath, http_method: method },
      });
    });
    await waitFor(
      () => t.engine.registry.triggersOfType('http', 'live').length === FUZZ_ROUTES.length,
      'the fuzz routes',
    );
    baselineChannels = t.engine.channels.size;
  });

  afterAll(async () => {
    agent.destroy();
    await t.close();
  });

  /** One request with http.request; the answer, or an error if none came. */
  function send(r: FuzzRequest): Promise<Answer> {
    // A Map: header names include `__proto__`.
    const byName = new Map<string, string[]>();
    for (const [name, value] of r.headers) {
      const lower = name.toLowerCase();
      if (FRAMING_HEADERS.has(lower)) continue;
      byName.set(lower, [...(byName.get(lower) ?? []), value]);
    }
    const headers = Object.fromEntries(byName);
    const body = r.body === undefined ? undefined : Buffer.from(r.body, 'utf8');
    const framing: Record<string, string> = {};
    if (r.contentType !== undefined) framing['content-type'] = r.contentType;
    if (body) framing[r.chunked ? 'transfer-encoding' : 'content-length'] = r.chunked ? 'chunked' : String(body.length);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: r.method, path: r.path, agent, headers: { ...headers, ...framing } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: res.headers['content-type'],
              body: Buffer.concat(chunks),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(ANSWER_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      if (body && r.chunked) {
        // Three chunks, so the server reassembles a chunked body.
        const third = Math.ceil(body.length / 3);
        for (let i = 0; i < body.length; i += third) req.write(body.subarray(i, i + third));
        req.end();
      } else {
        req.end(body);
      }
    });
  }

  /** The status and body must be ones this server gives (the envelope on errors). */
  function checkAnswer(r: Pick<FuzzRequest, 'method'>, answer: Answer): void {
    expect([...KNOWN_STATUSES]).toContain(answer.status);
    if (answer.status < 400 || r.method === 'HEAD') return;
    if (answer.body.length === 0) {
      // Only Node's parser answers without a body (a head over 16 KB: 431).
      expect(PARSER_STATUSES.has(answer.status)).toBe(true);
      return;
    }
    expect(answer.contentType).toBe('application/json');
    const envelope = JSON.parse(answer.body.toString('utf8')) as {
      error: { code: unknown; message: unknown; error_id?: unknown };
    };
    expect(typeof envelope.error.code).toBe('string');
    expect(typeof envelope.error.message).toBe('string');
    if (answer.status >= 500) expect(typeof envelope.error.error_id).toBe('string');
  }

  async function normalRequestWorks(): Promise<void> {
    const answer = await send({
      method: 'GET',
      path: '/items/still-ok',
      headers: [],
      contentType: undefined,
      body: undefined,
      chunked: false,
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString('utf8'))).toEqual({ id: 'still-ok', type: 'object' });
  }

  it('answers 14,000 odd well-formed requests (32 at a time) with known statuses and envelopes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fuzzRequest, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const answers = await Promise.all(batch.map((r) => send(r)));
        answers.forEach((answer, i) => checkAnswer(batch[i], answer));
        await normalRequestWorks();
      }),
      fuzzParams(scaledRuns(14_000 / BATCH)),
    );
  });

  it('answers or closes 2,000 malformed requests on raw sockets (50 at a time), and keeps serving', async () => {
    const statuses = new Set<number>();
    const runs = scaledRuns(2_000 / RAW_BATCH);
    await fc.assert(
      fc.asyncProperty(fc.array(rawRequest, { minLength: RAW_BATCH, maxLength: RAW_BATCH }), async (batch) => {
        const replies = await Promise.all(batch.map((bytes) => rawExchange(port, bytes)));
        for (const reply of replies) {
          // Nothing (a request cut short) or a status line first; pipelined requests add more.
          if (reply.length === 0) continue;
          const text = reply.toString('latin1');
          expect(text.startsWith('HTTP/1.1 ')).toBe(true);
          for (const [, status] of text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)) {
            const code = Number(status);
            expect([...KNOWN_STATUSES, ...PARSER_STATUSES]).toContain(code);
            statuses.add(code);
          }
        }
        await normalRequestWorks();
      }),
      fuzzParams(runs),
    );
    // The requests reached both Node's parser (400) and the routes (200, 404); a tiny FUZZ_RUNS_SCALE may miss one.
    if (runs >= 10) expect([...statuses]).toEqual(expect.arrayContaining([200, 400, 404]));
  });

  describe('regressions found by fuzzing', () => {
    const multipart = (body: string): FuzzRequest => ({
      method: 'POST',
      path: '/items/x',
      headers: [],
      contentType: 'multipart/form-data; boundary=xyz',
      body,
      chunked: false,
    });

    it('answers 400 to a multipart body cut inside a file part (it crashed the process)', async () => {
      const answer = await send(
        multipart('--xyz\r\nContent-Disposition: form-data; name="a"; filename="f"\r\n\r\nvalue'),
      );
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body.toString('utf8'))).toEqual({
        error: { code: 'BAD_REQUEST', message: 'Malformed multipart/form-data body: Unexpected end of form' },
      });
    });

    it('answers 400 at once to a file part closed right after its headers (it waited for the request timeout)', async () => {
      const answer = await send(
        multipart('--xyz\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\n--xyz\r\n--'),
      );
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body.toString('utf8'))).toEqual({
        error: { code: 'BAD_REQUEST', message: 'Malformed multipart/form-data body: a file part has no end' },
      });
    });
  });

  it('leaves no pending call and no request channel behind', async () => {
    await waitFor(() => t.engine.router.pending.size === 0, 'no pending calls');
    await waitFor(
      () => t.engine.channels.size === baselineChannels,
      `channels back to ${baselineChannels} (now ${t.engine.channels.size})`,
    );
  });
});

/** A request cut short gets no answer: after this long without one (ms), the client half-closes. */
const QUIET_MS = 200;
/** After the first bytes of an answer, pipelined answers get this long to follow (ms). */
const MORE_MS = 20;

/**
 * Writes `bytes` on a fresh connection and collects everything until the server closes. The
 * client half-closes once an answer has come (or none came for QUIET_MS): closing at once would
 * make Node abort a request still waiting for its handler.
 */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let endTimer: NodeJS.Timeout | undefined;
    const endSoon = (ms: number) => {
      clearTimeout(endTimer);
      endTimer = setTimeout(() => socket.end(), ms);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `the server neither answered nor closed within ${ANSWER_TIMEOUT_MS} ms: ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`,
        ),
      );
    }, ANSWER_TIMEOUT_MS);
    socket.on('connect', () => {
      socket.write(bytes);
      endSoon(QUIET_MS);
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      endSoon(MORE_MS);
    });
    // A reset (the server cut a bad request) counts as closed.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(endTimer);
      resolve(Buffer.concat(chunks));
    });
  });
}
