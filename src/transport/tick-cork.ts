import type { Socket } from 'node:net';
import type WebSocket from 'ws';

/**
 * Frames sent on a WebSocket in one turn of the event loop leave in one write: one system call
 * per frame was the engine's largest cost (bench/invoke and bench/http profiles). The first
 * frame of a turn is written at once (one call at a time waits for nothing); the socket is
 * corked for the frames after it and uncorked by `setImmediate`, after every I/O callback of
 * the turn has run, not by `process.nextTick`: each HTTP request arrives in its own I/O
 * callback, so a per-tick cork wrote once per request.
 */
export class TickCork {
  private readonly tcp: Socket | undefined;
  /** A frame was sent this turn: the next ones are corked until the turn ends. */
  private sentThisTurn = false;
  private corked = false;

  constructor(socket: WebSocket) {
    this.tcp = (socket as unknown as { _socket?: Socket })._socket;
  }

  /** Call before each send. */
  hold(): void {
    const tcp = this.tcp;
    if (this.corked || !tcp) return;
    if (!this.sentThisTurn) {
      this.sentThisTurn = true;
      setImmediate(this.release);
      return;
    }
    this.corked = true;
    tcp.cork();
  }

  /** One function per socket rather than a closure per turn. */
  private readonly release = (): void => {
    this.sentThisTurn = false;
    if (!this.corked) return;
    this.corked = false;
    this.tcp?.uncork();
  };
}
