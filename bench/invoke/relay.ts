import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type RawData } from 'ws';

/**
 * The baseline: the least a server can do and still carry iii invocations between unmodified
 * iii-sdk clients. It greets each socket with `workerregistered`, remembers who registered which
 * function, forwards `invokefunction` frames to the owner byte-for-byte, remembers
 * invocation_id -> caller, and forwards the `invocationresult` back byte-for-byte. Everything
 * else is ignored: no validation, no deadlines, no registry, no metrics.
 */
export class Relay {
  private readonly functions = new Map<string, WebSocket>();
  private readonly pending = new Map<string, WebSocket>();
  private wss: WebSocketServer | undefined;

  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    const wss = new WebSocketServer({ host, port, perMessageDeflate: false });
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    wss.on('connection', (socket) => this.accept(socket));
    return (wss.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const wss = this.wss;
    if (!wss) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  private accept(socket: WebSocket): void {
    socket.send(JSON.stringify({ type: 'workerregistered', worker_id: randomUUID(), reattach_token: randomUUID() }));
    socket.on('message', (data: RawData) => this.onFrame(socket, data as Buffer));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const [id, owner] of this.functions) if (owner === socket) this.functions.delete(id);
    });
  }

  private onFrame(socket: WebSocket, data: Buffer): void {
    let message: { type?: unknown; id?: unknown; function_id?: unknown; invocation_id?: unknown };
    try {
      message = JSON.parse(data.toString('utf8')) as typeof message;
    } catch {
      return;
    }
    switch (message.type) {
      case 'registerfunction':
        this.functions.set(message.id as string, socket);
        return;
      case 'invokefunction': {
        const target = this.functions.get(message.function_id as string);
        if (!target) return;
        if (typeof message.invocation_id === 'string') this.pending.set(message.invocation_id, socket);
        target.send(data, { binary: false });
        return;
      }
      case 'invocationresult': {
        const id = message.invocation_id as string;
        const caller = this.pending.get(id);
        if (!caller) return;
        this.pending.delete(id);
        caller.send(data, { binary: false });
        return;
      }
      default:
        return;
    }
  }
}
