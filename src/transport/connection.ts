import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { encode, TEXT_FRAME } from '../protocol/codec';
import type { OutboundMessage } from '../protocol/messages';
import { TickCork } from './tick-cork';

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
  /** The frames of one event-loop turn leave in one write. */
  private readonly cork: TickCork;

  constructor(
    readonly socket: WebSocket,
    readonly ipAddress: string,
    private readonly maxSendQueueBytes: number,
    private readonly onOverflow: (connection: WorkerConnection) => void,
  ) {
    this.cork = new TickCork(socket);
  }

  send(message: OutboundMessage): boolean {
    if (this.closing || this.socket.readyState !== WebSocket.OPEN) return false;
    this.cork.hold();
    const frame = encode(message);
    if (typeof frame === 'string') this.socket.send(frame);
    else this.socket.send(frame, TEXT_FRAME);
    if (this.socket.bufferedAmount > this.maxSendQueueBytes) {
      this.onOverflow(this);
      this.close(CloseCode.policy, 'send queue full: the worker stopped reading');
      return false;
    }
    return true;
  }

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
