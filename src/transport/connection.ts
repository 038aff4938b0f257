import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { encode } from '../protocol/codec';
import type { OutboundMessage } from '../protocol/messages';

/** Close codes the engine uses on worker sockets. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  /** The node is draining: the SDKs reconnect (through the load balancer, to another node). */
  serviceRestart: 1012,
} as const;

/**
 * One worker's WebSocket. Sending never blocks and never grows without bound: when the bytes
 * queued for a socket that has stopped reading pass `maxSendQueueBytes`, the socket is closed
 * (1008) and everyone else goes on unaffected.
 */
export class WorkerConnection {
  readonly id = randomUUID();
  readonly reattachToken = randomUUID();
  readonly connectedAtMs = Date.now();
  closing = false;
  /** The TCP socket under `socket`, corked while the frames of one event-loop turn are collected. */
  private readonly tcp: Socket | undefined;
  private corked = false;

  constructor(
    readonly socket: WebSocket,
    readonly ipAddress: string,
    private readonly maxSendQueueBytes: number,
    private readonly onOverflow: (connection: WorkerConnection) => void,
  ) {
    this.tcp = (socket as unknown as { _socket?: Socket })._socket;
  }

  send(message: OutboundMessage): boolean {
    if (this.closing || this.socket.readyState !== WebSocket.OPEN) return false;
    this.corkUntilImmediate();
    this.socket.send(encode(message));
    if (this.socket.bufferedAmount > this.maxSendQueueBytes) {
      this.onOverflow(this);
      this.close(CloseCode.policy, 'send queue full: the worker stopped reading');
      return false;
    }
    return true;
  }

  /**
   * Frames sent in one turn of the event loop leave in one write: one system call per frame was
   * the engine's largest cost (bench/invoke and bench/http profiles). The socket is uncorked by
   * `setImmediate`, after every I/O callback of the turn has run, not by `process.nextTick`: each
   * HTTP request arrives in its own I/O callback, so a per-tick cork wrote once per request.
   */
  private corkUntilImmediate(): void {
    const tcp = this.tcp;
    if (this.corked || !tcp) return;
    this.corked = true;
    tcp.cork();
    setImmediate(this.uncork);
  }

  /** One function per connection rather than a closure per turn. */
  private readonly uncork = (): void => {
    this.corked = false;
    this.tcp?.uncork();
  };

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
    }
    // A peer that never answers the close handshake is cut off after a grace period.
    setTimeout(() => this.socket.terminate(), 2000).unref();
  }
}
