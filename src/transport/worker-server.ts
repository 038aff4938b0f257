import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { WorkerListenerConfig } from '../config/types';
import type { Logger } from '../observability/logger';
import { createListenerServer } from './tls';

export interface WorkerServerHandlers {
  /** A worker protocol socket on `/`. */
  onWorker(socket: WebSocket, request: IncomingMessage): void;
  /** The SDK's telemetry socket on `/otel`. */
  onTelemetry(socket: WebSocket, request: IncomingMessage): void;
  /** `/ws/channels/...`: returns false when the path is not a channel path. */
  onChannelUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
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

  constructor(
    readonly config: WorkerListenerConfig,
    maxMessageBytes: number,
    private readonly handlers: WorkerServerHandlers,
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: maxMessageBytes });
    // With `tls` the listener serves wss:// only; a connection gets handshakeTimeoutMs for the TLS handshake.
    this.server = createListenerServer(config.tls, { handshakeTimeoutMs: config.handshakeTimeoutMs, logger }, (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'Not found: this port serves WebSocket upgrades only' } }));
    });
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
    const path = (req.url ?? '/').split('?', 1)[0];
    const channel = path !== '/' && path !== '' && path !== '/otel';
    if (this.closed || (!this.accepting && !channel)) return rejectUpgrade(socket, 503, 'Service Unavailable');
    if (path === '/' || path === '') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.handlers.onWorker(ws, req));
    } else if (path === '/otel') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.handlers.onTelemetry(ws, req));
    } else if (!this.handlers.onChannelUpgrade(req, socket, head)) {
      rejectUpgrade(socket, 404, 'Not Found');
    }
  }
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
