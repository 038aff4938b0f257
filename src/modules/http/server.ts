import type http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { LogLimiter } from '../../observability/log-limiter';
import { AddressLimit } from '../../transport/address-limit';
import { createListenerServer } from '../../transport/tls';
import { CorsPolicy } from './cors';
import { HttpErrorCode, envelope, sendEnvelope, type HttpErrorKind } from './envelope';
import { Exchange, type ExchangeDeps } from './exchange';
import { decodeParams, requestTarget } from './request';
import { splitPath, type HttpRoute } from './route';
import type { RouteTable } from './route-table';
import { Slots } from './slots';

/**
 * The answer to a request that reaches a draining node (on a kept-alive connection: the listener
 * itself is closed). Ours; the original has no drain.
 */
const SHUTTING_DOWN = { code: 'SERVICE_UNAVAILABLE', status: 503 } as const;

/** The config key of the waiting line's bound, as refusals and `iii_limit_refusals_total` name it. */
const QUEUED_LIMIT_KEY = 'iii-http.max_queued_requests';

/** Largest request head (request line + headers), in bytes; a larger one is answered 431 by Node. */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface HttpServerOptions extends ExchangeDeps {
  routes: RouteTable;
  cors: CorsPolicy;
  /** `concurrency_request_limit` (0 is read as 1). */
  concurrencyLimit: number;
  /** `max_queued_requests`: requests that may wait for a slot; more are answered 503 (0 = none wait). */
  maxQueuedRequests: number;
  /** `max_header_count`: header lines a request may carry; more are answered 431. */
  maxHeaderCount: number;
  /** `max_connections_per_address` (0 = unlimited): connections beyond it are answered 429 and closed. */
  maxConnectionsPerAddress: number;
}

/**
 * The node:http server of `iii-http`: answers preflights, 404 and 405 itself, then runs each
 * matched request as an Exchange once it holds one of the server-wide concurrency slots.
 */
/** How long a connection over `max_connections_per_address` may wait before its first request, in milliseconds. */
export const OVER_LIMIT_IDLE_MS = 2000;

export class HttpServer {
  private readonly server: http.Server;
  private readonly slots: Slots;
  private readonly live = new Set<Exchange>();
  private readonly addresses: AddressLimit;
  /** Connections accepted over `max_connections_per_address`: their first request is answered 429. */
  private readonly overLimit = new WeakSet<Socket>();
  /** 429s are warned about once a minute per client address: a client can retry as fast as it likes. */
  private readonly refusalLog = new LogLimiter();
  /** Set when the engine starts draining: the listener is closed and new requests are refused. */
  private closed: Promise<void> | undefined;
  /** An exchange is over (its response closed, or it was aborted): its slot goes to the next request. */
  private readonly exchangeEnded = (exchange: Exchange): void => {
    this.live.delete(exchange);
    this.slots.release();
  };

  constructor(private readonly options: HttpServerOptions) {
    this.slots = new Slots(Math.max(1, options.concurrencyLimit), options.maxQueuedRequests);
    // A malformed request line or an oversized head never reaches `dispatch`: Node answers 400/431.
    // `iii-http.tls` (read at config load): https only.
    this.server = createListenerServer(
      options.host.config.tls?.http,
      { server: { maxHeaderSize: MAX_HEADER_BYTES }, logger: options.log },
      (req, res) => this.dispatch(req, res),
    );
    // Node keeps at most maxHeadersCount headers and drops the rest silently: keep one more than
    // the limit, so a request over it is seen (and refused) rather than quietly truncated.
    this.server.maxHeadersCount = options.maxHeaderCount + 1;
    this.addresses = new AddressLimit(options.maxConnectionsPerAddress, 'iii-http.max_connections_per_address', () =>
      options.host.metrics.limitRefusals.inc({ limit: 'iii-http.max_connections_per_address' }),
    );
    // Over TLS a request's socket is the TLSSocket of 'secureConnection', not the TCP socket of 'connection'.
    const accepted = (this.server as unknown) instanceof tls.Server ? 'secureConnection' : 'connection';
    this.server.on(accepted as 'connection', (socket: Socket) => {
      if (this.addresses.acquire(socket.remoteAddress ?? '', socket)) return;
      this.overLimit.add(socket);
      // It gets its 429 on its first request; one that sends none is not kept for Node's 60 s headersTimeout.
      socket.setTimeout(OVER_LIMIT_IDLE_MS, () => socket.destroy());
    });
    options.host.events.once('draining', () => this.stopAccepting());
  }

  /**
   * The engine is draining: new connections are refused (the listener closes), requests on
   * kept-alive connections are answered 503 with `connection: close`, idle connections are
   * closed; requests already running finish (until `close`).
   */
  stopAccepting(): void {
    if (this.closed || !this.server.listening) return;
    this.closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Requests waiting for a slot now. */
  get queuedRequests(): number {
    return this.slots.waitingCount;
  }

  /** Hot reload: requests that start from now on use these (those in flight keep their deadline). */
  retune(changes: Pick<HttpServerOptions, 'timeoutMs' | 'bodyLimitBytes' | 'cors'>): void {
    Object.assign(this.options, changes);
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  async close(): Promise<void> {
    for (const exchange of this.live) exchange.abort();
    if (this.server.listening) this.stopAccepting();
    this.server.closeAllConnections();
    await this.closed;
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const { cors, routes } = this.options;
    if (this.closed) {
      const { code, status } = SHUTTING_DOWN;
      sendEnvelope(
        res,
        status,
        envelope(code, 'This engine node is shutting down: retry, the load balancer sends the request to another node'),
        {
          ...cors.headers(req),
          connection: 'close',
          'retry-after': '1',
        },
      );
      return;
    }
    if (this.refusedByLimit(req, res)) return;
    if (CorsPolicy.isPreflight(req)) {
      res.writeHead(204, cors.preflightHeaders(req));
      res.end();
      return;
    }
    const corsHeaders = cors.headers(req);
    const method = (req.method ?? 'GET').toUpperCase();
    const target = requestTarget(req.url ?? '/');
    const match = routes.match(method, splitPath(target.path));
    if (match.kind === 'not_found') {
      sendEnvelope(res, HttpErrorCode.notFound.status, envelope(HttpErrorCode.notFound.code, 'Not Found'), corsHeaders);
      return;
    }
    if (match.kind === 'method_not_allowed') {
      const { code, status } = HttpErrorCode.methodNotAllowed;
      sendEnvelope(
        res,
        status,
        envelope(code, `Method ${method} is not allowed here; allowed: ${match.allow.join(', ')}`),
        { ...corsHeaders, allow: match.allow.join(', ') },
      );
      return;
    }
    const decoded = decodeParams(match.params);
    if (!decoded.ok) {
      const { code, status } = HttpErrorCode.badRequest;
      sendEnvelope(
        res,
        status,
        envelope(code, `Path segment ${JSON.stringify(decoded.segment)} is not valid percent-encoding`),
        corsHeaders,
      );
      return;
    }
    const route = match.value;
    const { params } = decoded;
    // A free slot is taken at once; a request still queued when its client leaves is withdrawn.
    // A granted request holds its slot until its exchange ends (see `exchangeEnded`).
    if (this.slots.tryTake()) {
      this.start(req, res, route, params, target.query, corsHeaders);
      return;
    }
    const withdraw = this.slots.acquire(() => this.start(req, res, route, params, target.query, corsHeaders));
    if (withdraw) res.on('close', withdraw);
    else this.refuseBusy(res, corsHeaders);
  }

  /** Every slot is busy and the waiting line is full: 503 now rather than one more waiter held. */
  private refuseBusy(res: ServerResponse, cors: Readonly<OutgoingHttpHeaders>): void {
    this.options.host.metrics.limitRefusals.inc({ limit: QUEUED_LIMIT_KEY });
    const { code, status } = HttpErrorCode.serverBusy;
    const limit = Math.max(1, this.options.concurrencyLimit);
    const message =
      `Server busy: all ${limit} request slots (concurrency_request_limit) are taken and ${this.slots.maxWaiting} requests ` +
      `are already waiting (${QUEUED_LIMIT_KEY} = ${this.slots.maxWaiting}); retry later`;
    sendEnvelope(res, status, envelope(code, message), { ...cors, 'retry-after': '1' });
  }

  /** `max_connections_per_address` (429, connection closed) and `max_header_count` (431); true when answered. */
  private refusedByLimit(req: IncomingMessage, res: ServerResponse): boolean {
    let refusal: { kind: HttpErrorKind; message: string };
    if (this.overLimit.has(req.socket)) {
      const peer = req.socket.remoteAddress ?? '';
      refusal = { kind: HttpErrorCode.tooManyConnections, message: this.addresses.refusal(peer) };
      this.refusalLog.warn(this.options.log, `429 ${peer}`, { peer, status: 429 }, refusal.message);
    } else if (req.rawHeaders.length / 2 > this.options.maxHeaderCount) {
      this.options.host.metrics.limitRefusals.inc({ limit: 'iii-http.max_header_count' });
      refusal = {
        kind: HttpErrorCode.tooManyHeaders,
        message: `The request has more than ${this.options.maxHeaderCount} headers (max_header_count); send fewer`,
      };
    } else {
      return false;
    }
    const { kind, message } = refusal;
    sendEnvelope(res, kind.status, envelope(kind.code, message), {
      ...this.options.cors.headers(req),
      connection: 'close',
    });
    return true;
  }

  private start(
    req: IncomingMessage,
    res: ServerResponse,
    route: HttpRoute,
    params: Record<string, string>,
    query: Record<string, string>,
    cors: Readonly<OutgoingHttpHeaders>,
  ): void {
    const exchange = new Exchange(this.options, req, res, route, params, query, cors, this.exchangeEnded);
    this.live.add(exchange);
    exchange.run().catch((err: unknown) => this.options.log.error({ err }, 'http exchange crashed'));
  }
}
