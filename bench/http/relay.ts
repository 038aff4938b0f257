import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { HANDLER_FUNCTION_ID } from './protocol';

/**
 * The baseline: a plain node:http server that forwards each request over ONE WebSocket to the
 * worker speaking the iii protocol, and writes the worker's `{status_code, body}` back as JSON.
 * It builds the same request object the engine sends (minus the channel refs, which it has no
 * channels for), with a fixed `/api/<route>/:id` split instead of a route table, and nothing
 * else: no middleware, no timeouts, no CORS, no limits.
 */
export class HttpRelay {
  private worker: WebSocket | undefined;
  private readonly pending = new Map<string, http.ServerResponse>();
  private nextId = 0;
  private wss: WebSocketServer | undefined;
  private server: http.Server | undefined;

  async listen(): Promise<{ wsPort: number; httpPort: number }> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    wss.on('connection', (socket) => this.accept(socket));
    const server = http.createServer((req, res) => this.forward(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { wsPort: (wss.address() as AddressInfo).port, httpPort: (server.address() as AddressInfo).port };
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    for (const client of this.wss?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
  }

  private accept(socket: WebSocket): void {
    socket.send(JSON.stringify({ type: 'workerregistered', worker_id: randomUUID(), reattach_token: randomUUID() }));
    socket.on('error', () => undefined);
    socket.on('message', (data: RawData) => this.onFrame(socket, data as Buffer));
  }

  private onFrame(socket: WebSocket, data: Buffer): void {
    let message: {
      type?: string;
      id?: string;
      invocation_id?: string;
      result?: { status_code?: number; body?: unknown };
    };
    try {
      message = JSON.parse(data.toString('utf8')) as typeof message;
    } catch {
      return;
    }
    if (message.type === 'registerfunction' && message.id === HANDLER_FUNCTION_ID) this.worker = socket;
    if (message.type !== 'invocationresult' || message.invocation_id === undefined) return;
    const res = this.pending.get(message.invocation_id);
    if (!res) return;
    this.pending.delete(message.invocation_id);
    const body = JSON.stringify(message.result?.body ?? {});
    res.writeHead(message.result?.status_code ?? 200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!this.worker) {
      res.writeHead(503).end();
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const segments = path.split('/');
    const headers: Record<string, string> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers[req.rawHeaders[i].toLowerCase()] = req.rawHeaders[i + 1];
    const invocationId = String(this.nextId++);
    this.pending.set(invocationId, res);
    const data = {
      query_params: q < 0 ? {} : Object.fromEntries(new URLSearchParams(url.slice(q + 1))),
      path_params: { id: segments[3] ?? '' },
      headers,
      path: `/${segments[1]}/${segments[2]}/:id`,
      method: req.method,
      body: null,
      trigger: { type: 'http', path: `/${segments[1]}/${segments[2]}/:id`, method: req.method },
    };
    this.worker.send(
      JSON.stringify({ type: 'invokefunction', invocation_id: invocationId, function_id: HANDLER_FUNCTION_ID, data }),
    );
    req.resume();
  }
}
