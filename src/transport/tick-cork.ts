import type { Socket } from 'node:net';
import type WebSocket from 'ws';

/**
 * Frames sent on a WebSocket in one turn of the event loop leave in one write: one system call
 * per frame was the engine's largest cost (bench/invoke and bench/http profiles). The TCP
 * socket is uncorked by `setImmediate`, after every I/O callback of the turn has run, not by
 * `process.nextTick`: each HTTP request arrives in its own I/O callback, so a per-tick cork
 * wrote once per request.
 */
export class TickCork {
  private readonly tcp: Socket | undefined;
  private corked = false;

  constructor(socket: WebSocket) {
    this.tcp = (socket as unknown as { _socket?: Socket })._socket;
  }

  /** Call before each send: the first of a turn corks the socket until the turn ends. */
  hold(): void {
    const tcp = this.tcp;
    if (this.corked || !tcp) return;
    this.corked = true;
    tcp.cork();
    setImmediate(this.release);
  }

  /** One function per socket rather than a closure per turn. */
  private readonly release = (): void => {
    this.corked = false;
    this.tcp?.uncork();
  };
}
