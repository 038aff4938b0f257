import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { WorkerListenerConfig } from '../config/types';
import { LogLimiter } from '../observability/log-limiter';
import type { Logger } from '../observability/logger';
import { ErrorCode } from '../protocol/errors';
import { sdkChannelUrl } from './sdk-channel-url';
import type { AddressLimit } from './address-limit';
import { createListenerServer } from './tls';
import { refuseUpgrade, rejectUpgrade, type UpgradeRefusal } from './reject-upgrade';

/** The path of another node's direct bus link (src/cluster/direct-bus.ts). */
export const LINK_PATH = '/ws/cluster';

/** Longest wait between two checks of the handshake timeout, in milliseconds. */
const HANDSHAKE_CHECK_MAX_MS = 1000;

export interface WorkerServerHandlers {
  /** Whether a worker or telemetry socket may upgrade (token, protected mode); channels and links carry their own key. */
  checkUpgrade(request: IncomingMessage): UpgradeRefusal | undefined;
  /** A worker protocol socket on `/`. */
  onWorker(socket: WebSocket, request: IncomingMessage): void;
  /** The SDK's telemetry socket on `/otel`. */
  onTelemetry(socket: WebSocket, request: IncomingMessage): void;
  /** `/ws/channels/...`: returns false when the path is not a channel path. */
  onChannelUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** LINK_PATH (`/ws/cluster`): another node's direct bus link; false when this node takes none. */
  onLinkUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/**
 * One `iii-worker-manager` listener: an HTTP server whose upgrades are routed by path to the
 * worker protocol, the telemetry socket or the data channels. Everything else is a 404.
 */
export class WorkerServer {
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  /** False once draining: new worker and telemetry sockets are refused. */
  private accepting = true;
  /** True once closing: every upgrade is refused. */
  private closed = false;
  /** Refusals (401, 403, 429) are warned about once a minute per peer, path and status: SDKs retry forever. */
  private readonly refusalLog = new LogLimiter();

  constructor(
    readonly config: WorkerListenerConfig,
    maxMessageBytes: number,
    /** `max_connections_per_address`, shared by every worker listener of the engine. */
    private readonly addresses: AddressLimit,
    private readonly handlers: WorkerServerHandlers,
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: maxMessageBytes });
    // With `tls` the listener serves wss:// only; a connection gets handshakeTimeoutMs for the TLS
    // handshake. Node enforces headersTimeout only when it checks its connections (every 30 s by
    // default): checking at least once per handshake timeout keeps a slow handshake within 2x it.
    this.server = createListenerServer(
      config.tls,
      {
        server: { connectionsCheckingInterval: Math.min(HANDSHAKE_CHECK_MAX_MS, config.handshakeTimeoutMs) },
        handshakeTimeoutMs: config.handshakeTimeoutMs,
        logger,
      },
      (_req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { code: 'NOT_FOUND', message: 'Not found: this port serves WebSocket upgrades only' },
          }),
        );
      },
    );
    // A connection gets this long to finish its request headers (the original's handshake timeout).
    this.server.headersTimeout = config.handshakeTimeoutMs;
    this.server.requestTimeout = config.handshakeTimeoutMs;
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Refuses new worker and telemetry sockets (503) from now on (the node is draining).
   * Established sockets are left to the caller, and data channel upgrades are still accepted:
   * they carry the streams of calls in flight, which the drain lets finish.
   */
  stopAccepting(): void {
    this.accepting = false;
  }

  async close(): Promise<void> {
    this.accepting = false;
    this.closed = true;
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.logger.debug({ err }, 'socket error during upgrade'));
    // iii-sdk appends a channel path to a worker URL that has a query (?token=): serve it as the channel request it is.
    const channelUrl = sdkChannelUrl(req.url ?? '/');
    if (channelUrl !== undefined) req.url = channelUrl;
    const path = (req.url ?? '/').split('?', 1)[0];
    // Data channels and node links carry their own keys, and stay open to a draining node: they
    // carry the streams and results of calls in flight, which the drain lets finish.
    const channel = path !== '/' && path !== '' && path !== '/otel';
    if (this.closed || (!this.accepting && !channel)) return rejectUpgrade(socket, 503, 'Service Unavailable');
    // Worker and telemetry sockets need the token / pass protected mode; channels and links carry their own key.
    const refusal = channel ? undefined : this.handlers.checkUpgrade(req);
    const address = req.socket.remoteAddress ?? '';
    if (refusal) {
      this.warnRefused(path, address, refusal.status, refusal.message);
      return refuseUpgrade(socket, refusal.status, refusal.code, refusal.message, refusal.headers);
    }
    // Worker and /otel sockets count per client address; data channels are per call, keyed, and exempt.
    if (!channel && !this.addresses.acquire(address, socket)) {
      const message = this.addresses.refusal(address);
      this.warnRefused(path, address, 429, message);
      return refuseUpgrade(socket, 429, ErrorCode.limitExceeded, message);
    }
    if (path === '/' || path === '') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.handlers.onWorker(ws, req));
    } else if (path === '/otel') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.handlers.onTelemetry(ws, req));
    } else if (path === LINK_PATH) {
      if (!this.handlers.onLinkUpgrade(req, socket, head)) rejectUpgrade(socket, 404, 'Not Found');
    } else if (!this.handlers.onChannelUpgrade(req, socket, head)) {
      rejectUpgrade(socket, 404, 'Not Found');
    }
  }

  private warnRefused(path: string, peer: string, status: number, message: string): void {
    const fields = { listener: this.config.instanceId, path, peer, status };
    this.refusalLog.warn(this.logger, `${status} ${path} ${peer}`, fields, message);
  }
}
