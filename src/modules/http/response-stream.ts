import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import { rawDataToBuffer } from '../../transport/raw-data';
import { addHeader } from './response';

/**
 * A streamed response (§5.5): the worker writes to the response channel, the engine reads it.
 * Text frames before the first binary one are control messages (`set_status`, `set_headers`);
 * the response is committed (status and headers sent) at the first binary frame or when the
 * channel closes, and every binary frame after that is body. Back-pressure: the channel socket
 * is paused while the HTTP response's buffer is full.
 */
export class ResponseStream {
  private status = 200;
  private readonly headers: OutgoingHttpHeaders;
  private committed = false;
  private ended = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly res: ServerResponse,
    extraHeaders: OutgoingHttpHeaders,
    /** Called once, when the status line has been sent. */
    private readonly onCommit: () => void,
    /** The channel ended abnormally (its writer vanished) before anything was committed. */
    private readonly onBroken: (code: number, reason: string) => void,
  ) {
    this.headers = { ...extraHeaders };
    socket.on('message', (data: RawData, isBinary: boolean) => this.onFrame(rawDataToBuffer(data), isBinary));
    socket.on('close', (code: number, reason: Buffer) => this.finish(code, reason.toString()));
    // An error is followed by 'close'; the listener keeps ws from throwing.
    socket.on('error', () => undefined);
    res.on('drain', () => socket.resume());
  }

  get isCommitted(): boolean {
    return this.committed;
  }

  /** Stops reading (the buffered path won, the request timed out or the client left). */
  cancel(): void {
    this.ended = true;
    if (this.socket.readyState === this.socket.CONNECTING || this.socket.readyState === this.socket.OPEN) this.socket.close();
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.ended) return;
    if (!isBinary) {
      if (!this.committed) this.control(data.toString('utf8'));
      return;
    }
    this.commit();
    if (!this.res.write(data)) this.socket.pause();
  }

  private control(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message === null || typeof message !== 'object') return;
    const { type, status_code, headers } = message as Record<string, unknown>;
    if (type === 'set_status' && typeof status_code === 'number' && Number.isInteger(status_code) && status_code >= 200 && status_code <= 599) {
      this.status = status_code;
    } else if (type === 'set_headers' && headers !== null && typeof headers === 'object') {
      for (const [name, value] of Object.entries(headers)) addHeader(this.headers, name, value);
    }
  }

  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    this.res.writeHead(this.status, this.headers);
    // Server-sent events and other slow streams must reach the client frame by frame.
    this.res.flushHeaders();
    this.onCommit();
  }

  /** 1000 is the writer's clean end; any other code means it vanished mid-response. */
  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (code === 1000) {
      this.commit();
      this.res.end();
    } else if (this.committed) {
      // A truncated body must not look complete to the client.
      this.res.destroy();
    } else {
      this.onBroken(code, reason);
    }
  }
}
