import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { Json } from '../protocol/messages';
import { EngineError, ErrorCode } from '../protocol/errors';
import type { Logger } from '../observability/logger';
import type { Readiness } from '../observability/ops-server';
import { CLEARED_COOKIE, decide, sessionCookie } from './auth';
import { sameSecret } from '../transport/secret';
import { AddressLimit } from '../transport/address-limit';
import { createListenerServer } from '../transport/tls';
import type { TlsMaterial } from '../config/types';
import { loginPage, shellPage } from './pages';
import {
  CLEARED_CREDENTIAL,
  credentialCookie,
  credentialOf,
  SignIns,
  type ConsoleAccess,
  type SignIn,
} from './sign-in';

/**
 * The web console of one node (`engine.console`, `III_CONSOLE_PORT`): a static single-page app
 * (built by scripts/build-console.mjs into dist/console) and a small JSON API over the engine's
 * own built-in functions, called in-process as the engine itself. Every node serves it, and
 * since the registry is mirrored on every node, each shows the whole cluster.
 *
 * API:
 * - `GET /api/session`: `{node_id, read_only}`.
 * - `POST /api/call` `{function_id, payload}`: calls one function and answers `{result}` (and
 *   `trace_id` for a change, traced like any call: reads are neither traced nor counted). The
 *   functions in READ_FUNCTIONS only read; any other call (the invoke form, redrive, discard,
 *   state::set...) is a change and is refused with 403 in read-only mode.
 * - `GET /api/events`: server-sent events, one `snapshot` a second (nodes, this node's
 *   metrics, readiness) for the live cluster page.
 *
 * Changes need `content-type: application/json` (a cross-site form cannot send it without a
 * CORS preflight, which this server never grants) on top of the SameSite=Strict cookie.
 */

export interface ConsoleHost {
  nodeId: string;
  /**
   * Calls a function through the router as the engine (no RBAC session), with its deadline.
   * `observed`: traced and counted like any call (the operator's own calls); reads are not.
   */
  call(functionId: string, data: Json, observed?: boolean, traceparent?: string): Promise<Json | undefined>;
  readiness(): Readiness;
  /** Sign-in through the worker port's RBAC auth function, when it has one and no token (sign-in.ts). */
  signIn?: SignIn;
}

export interface ConsoleOptions {
  host: string;
  port: number;
  readOnly: boolean;
  /** The worker token; undefined: loopback peers only (see auth.ts). */
  token: string | undefined;
  logger: Logger;
  /** Where app.js and app.css are (default: dist/console next to this build). */
  assetsDir?: string;
  /** Connections one client address may hold open (the worker listener's `max_connections_per_address`; 0 = unlimited). */
  maxConnectionsPerAddress?: number;
  /** Told of each refusal by that limit (`iii_limit_refusals_total`). */
  onLimitRefused?: () => void;
  /** Serve https:// only (the node's TLS material); the session cookie is then `Secure`. */
  tls?: TlsMaterial;
}

/** Functions the console may call in read-only mode: each only reads. */
export const READ_FUNCTIONS: ReadonlySet<string> = new Set([
  'engine::functions::list',
  'engine::functions::info',
  'engine::workers::list',
  'engine::workers::info',
  'engine::cluster::nodes',
  'engine::triggers::list',
  'engine::triggers::info',
  'engine::registered-triggers::list',
  'engine::registered-triggers::info',
  'engine::queue::list_topics',
  'engine::queue::topic_stats',
  'engine::queue::dlq_topics',
  'engine::queue::dlq_messages',
  'engine::traces::list',
  'engine::traces::tree',
  'engine::traces::group_by',
  'engine::logs::list',
  'engine::metrics::list',
  'engine::functions::stats',
  'engine::rollups::list',
  'engine::alerts::list',
  'engine::health::check',
  'engine::cron::jobs',
  'state::get',
  'state::list',
  'state::list_groups',
  'stream::get',
  'stream::list',
  'stream::list_all',
  'stream::list_groups',
]);

/** Largest request body (an invoke payload or a state item), in bytes; more is 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Live feeds open at once on one node; more are 503 (each costs a snapshot a second). */
export const MAX_EVENT_STREAMS = 64;
/** How often a live feed gets a snapshot, in ms. */
const SNAPSHOT_MS = 1000;

/** A connection over the per-address limit gets its 429 on its first request, or is closed after this long idle. */
const OVER_LIMIT_IDLE_MS = 5000;

const ASSETS: Record<string, string> = {
  '/app.js': 'text/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
};

/** Same-origin only: the app loads nothing from elsewhere and runs no inline script. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export class ConsoleServer {
  private readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private readonly assetsDir: string;
  private readonly addresses: AddressLimit;
  private readonly overLimit = new WeakSet<Socket>();
  /** Sign-in by auth function: only without a token (a token, when set, is what signs in). */
  private readonly signIns: SignIns | undefined;

  constructor(
    private readonly host: ConsoleHost,
    private readonly options: ConsoleOptions,
  ) {
    this.assetsDir = options.assetsDir ?? defaultAssetsDir();
    this.signIns = options.token === undefined && host.signIn !== undefined ? new SignIns(host.signIn) : undefined;
    this.server = createListenerServer(options.tls, { logger: options.logger }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.warn({ err }, 'console request failed');
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'console_error', message: (err as Error).message } });
        else res.destroy();
      });
    });
    // The same per-address ceiling as the worker listeners, so one client cannot take every socket.
    this.addresses = new AddressLimit(
      options.maxConnectionsPerAddress ?? 0,
      'max_connections_per_address',
      options.onLimitRefused,
    );
    this.server.on('connection', (socket: Socket) => {
      if (this.addresses.acquire(socket.remoteAddress ?? '', socket)) return;
      this.overLimit.add(socket);
      socket.setTimeout(OVER_LIMIT_IDLE_MS, () => socket.destroy());
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const res of this.streams) res.end();
    this.streams.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.overLimit.has(req.socket)) {
      res.writeHead(429, {
        ...SECURITY_HEADERS,
        'content-type': 'application/json; charset=utf-8',
        connection: 'close',
      });
      return void res.end(
        JSON.stringify({
          error: { code: ErrorCode.limitExceeded, message: this.addresses.refusal(req.socket.remoteAddress ?? '') },
        }),
      );
    }
    const url = new URL(req.url ?? '/', 'http://console');
    const route = `${req.method} ${url.pathname}`;
    // The bundle and its stylesheet hold no data: the login page needs the stylesheet.
    if (req.method === 'GET' && ASSETS[url.pathname]) return this.asset(res, url.pathname);
    if (route === 'POST /login') return this.login(req, res);
    if (route === 'POST /logout') {
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': [CLEARED_COOKIE, CLEARED_CREDENTIAL] });
      return void res.end();
    }
    if (this.signIns !== undefined) return this.handleSignedIn(req, res, url, route, this.signIns);

    const token = this.options.token;
    const given = url.searchParams.get('token');
    if (req.method === 'GET' && given !== null && !url.pathname.startsWith('/api/')) {
      // ?token= signs the browser in, then leaves the address bar (and its history) at once.
      if (token === undefined || !sameSecret(given, token)) return sendHtml(res, 401, loginPage('Wrong token.'));
      url.searchParams.delete('token');
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: url.pathname + url.search,
        'set-cookie': sessionCookie(token, this.options.tls !== undefined),
      });
      return void res.end();
    }

    const auth = decide(req, token);
    if (!auth.ok) {
      if (url.pathname.startsWith('/api/'))
        return sendJson(res, auth.status, {
          error: { code: auth.status === 401 ? ErrorCode.unauthorized : ErrorCode.forbidden, message: auth.message },
        });
      return sendHtml(res, auth.status, auth.status === 401 ? loginPage() : loginPage(auth.message, false));
    }

    return this.serve(req, res, url, route);
  }

  /** Console sign-in through the auth function: each request's credential is checked (cached) before it is served. */
  private async handleSignedIn(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    route: string,
    signIns: SignIns,
  ): Promise<void> {
    const given = url.searchParams.get('token');
    const api = url.pathname.startsWith('/api/');
    if (req.method === 'GET' && given !== null && !api) {
      const refused = await refusal(signIns, given, req);
      if (refused !== undefined) return sendHtml(res, 401, loginPage(`Refused: ${refused}`));
      url.searchParams.delete('token');
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: url.pathname + url.search,
        'set-cookie': credentialCookie(given, this.options.tls !== undefined),
      });
      return void res.end();
    }
    const credential = credentialOf(req);
    let access: ConsoleAccess;
    try {
      if (credential === undefined) throw new Error('sign in with a credential the auth function accepts');
      access = await signIns.access(credential, req);
    } catch (err) {
      const message = `refused by the auth function: ${(err as Error).message}`;
      if (api) return sendJson(res, 401, { error: { code: ErrorCode.unauthorized, message } });
      return sendHtml(res, 401, loginPage(credential === undefined ? undefined : `Refused: ${(err as Error).message}`));
    }
    return this.serve(req, res, url, route, access);
  }

  /** A signed-in request: the API and the app. `access`: what an auth function allowed (none: everything). */
  private async serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    route: string,
    access?: ConsoleAccess,
  ): Promise<void> {
    if (route === 'GET /api/session')
      return sendJson(res, 200, { node_id: this.host.nodeId, read_only: this.options.readOnly });
    if (route === 'GET /api/events') return this.events(req, res);
    if (route === 'POST /api/call') return this.call(req, res, access);
    if (url.pathname.startsWith('/api/'))
      return sendJson(res, 404, {
        error: {
          code: ErrorCode.notFound,
          message: `No console API ${route}: try GET /api/session, POST /api/call, GET /api/events`,
        },
      });
    if (req.method !== 'GET')
      return sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${req.method} is not served here` } });
    // Every other path is a page of the app (client-side routing by the hash).
    return sendHtml(res, 200, shellPage());
  }

  private asset(res: http.ServerResponse, name: string): void {
    const file = path.join(this.assetsDir, name.slice(1));
    fs.readFile(file, (err, body) => {
      if (err)
        return sendJson(res, 500, {
          error: { code: 'console_not_built', message: `${file} is missing: run npm run build` },
        });
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': ASSETS[name], 'cache-control': 'no-cache' });
      res.end(body);
    });
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => undefined);
    const given = body === undefined ? null : new URLSearchParams(body.toString('utf8')).get('token');
    if (this.signIns !== undefined) {
      const refused = given === null ? 'no credential given' : await refusal(this.signIns, given, req);
      if (given === null || refused !== undefined) return sendHtml(res, 401, loginPage(`Refused: ${refused}`));
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: '/',
        'set-cookie': credentialCookie(given, this.options.tls !== undefined),
      });
      return void res.end();
    }
    const token = this.options.token;
    if (token === undefined)
      return sendHtml(
        res,
        400,
        loginPage('This console has no token to check: it serves loopback peers without one.', false),
      );
    if (given === null || !sameSecret(given, token)) return sendHtml(res, 401, loginPage('Wrong token.'));
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: '/',
      'set-cookie': sessionCookie(token, this.options.tls !== undefined),
    });
    res.end();
  }

  private async call(req: http.IncomingMessage, res: http.ServerResponse, access?: ConsoleAccess): Promise<void> {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return fail(res, 415, 'unsupported_media_type', 'send the request as content-type: application/json');
    }
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (err) {
      return fail(res, 413, ErrorCode.payloadTooLarge, (err as Error).message);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return fail(res, 400, ErrorCode.invalidArguments, `the body is not JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return fail(res, 400, ErrorCode.invalidArguments, 'the body must be an object {function_id, payload}');
    const { function_id: functionId, payload } = parsed as { function_id?: unknown; payload?: unknown };
    if (typeof functionId !== 'string' || functionId.trim() === '')
      return fail(res, 400, ErrorCode.invalidArguments, 'field `function_id` must be a non-empty string');
    if (this.options.readOnly && !READ_FUNCTIONS.has(functionId)) {
      return fail(
        res,
        403,
        ErrorCode.forbidden,
        `the console is read-only (engine.console.read_only): ${functionId} is not one of the functions it may call`,
      );
    }
    const denial = access?.denial(functionId);
    if (denial !== undefined) return fail(res, 403, ErrorCode.forbidden, denial);
    // An operator's call gets a trace of its own, whose id the answer carries, so the page can show it.
    const observed = !READ_FUNCTIONS.has(functionId);
    const traceId = observed ? randomBytes(16).toString('hex') : undefined;
    const traceparent = traceId === undefined ? undefined : `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    const trace = traceId === undefined ? {} : { trace_id: traceId };
    try {
      const result = await this.host.call(functionId, (payload ?? {}) as Json, observed, traceparent);
      sendJson(res, 200, { result: result ?? null, ...trace });
    } catch (err) {
      const error = EngineError.from(err);
      sendJson(res, statusOf(error.code), { error: error.toBody(), ...trace });
    }
  }

  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.streams.size >= MAX_EVENT_STREAMS)
      return fail(res, 503, ErrorCode.limitExceeded, `at most ${MAX_EVENT_STREAMS} live feeds per node`);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    this.streams.add(res);
    req.on('close', () => {
      this.streams.delete(res);
      if (this.streams.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    void this.broadcast([res]);
    // One timer, one snapshot a second for every open feed.
    this.timer ??= setInterval(() => void this.broadcast([...this.streams]), SNAPSHOT_MS);
  }

  private async broadcast(to: http.ServerResponse[]): Promise<void> {
    if (to.length === 0) return;
    const frame = `event: snapshot\ndata: ${JSON.stringify(await this.snapshot())}\n\n`;
    for (const res of to) if (!res.writableEnded && !res.destroyed) res.write(frame);
  }

  /** What the cluster page shows: every node, this node's figures and its readiness. */
  async snapshot(): Promise<Json> {
    const [nodes, metrics] = await Promise.all([
      this.host
        .call('engine::cluster::nodes', {})
        .catch((err: unknown) => ({ error: EngineError.from(err).toBody() }) as unknown as Json),
      this.host.call('engine::metrics::list', {}).catch(() => null),
    ]);
    const engineMetrics = (metrics as { engine_metrics?: Record<string, Json> } | null)?.engine_metrics;
    return {
      node_id: this.host.nodeId,
      at_ms: Date.now(),
      readiness: this.host.readiness() as unknown as Json,
      nodes: ((nodes as { nodes?: Json[] } | undefined)?.nodes ?? []) as Json,
      invocations: engineMetrics?.['invocations'] ?? null,
      workers: engineMetrics?.['workers'] ?? null,
      performance: engineMetrics?.['performance'] ?? null,
      bus: busMessages(engineMetrics?.['prometheus']),
    };
  }
}

/** dist/console of this checkout or package: from dist/src/console here, or src/console when run from source (tests). */
function defaultAssetsDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, 'dist/console');
}

/** The direct bus's counts of calls sent to other nodes, by path (absent on the redis bus). */
function busMessages(prometheus: Json | undefined): Json {
  const metric = (Array.isArray(prometheus) ? prometheus : []).find(
    (m) => (m as { name?: string }).name === 'iii_cluster_bus_messages_total',
  ) as { values: Array<{ labels: { via?: string }; value: number }> } | undefined;
  if (!metric) return null;
  return Object.fromEntries(metric.values.map((v) => [v.labels.via ?? 'unknown', v.value]));
}

/** HTTP status of an engine error code: bad input is 4xx, a failed call 502. */
function statusOf(code: string): number {
  switch (code) {
    case ErrorCode.invalidArguments:
    case ErrorCode.deserializationError:
      return 400;
    case ErrorCode.forbidden:
      return 403;
    case ErrorCode.functionNotFound:
    case ErrorCode.notFound:
      return 404;
    case ErrorCode.payloadTooLarge:
      return 413;
    case ErrorCode.limitExceeded:
    case ErrorCode.shuttingDown:
      return 503;
    case ErrorCode.timeout:
      return 504;
    default:
      // queue_not_found, message_id_not_set... of the modules: the caller named something wrong.
      return /not_found|not_set|required|invalid/i.test(code) ? 400 : 502;
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped, so the 413 still reaches the client.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      size > MAX_BODY_BYTES
        ? reject(new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`))
        : resolve(Buffer.concat(chunks)),
    );
    req.on('error', reject);
  });
}

function fail(res: http.ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function sendHtml(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' });
  res.end(body);
}

/** Why the auth function refuses `credential`, or undefined when it accepts it. */
function refusal(signIns: SignIns, credential: string, req: http.IncomingMessage): Promise<string | undefined> {
  return signIns.access(credential, req).then(
    () => undefined,
    (err: unknown) => (err as Error).message,
  );
}
