import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ChannelCloseKind, ChannelItem, LocalReader, LocalReaderHandlers } from '../../transport/channels';
import { addHeader } from './response';

/**
 * A streamed response (§5.5): the worker writes to the response channel, the engine reads it
 * through its in-process end. Text frames before the first binary one are control messages
 * (`set_status`, `set_headers`); the response is committed (status and headers sent) at the first
 * binary frame or when the channel ends, and every binary frame after that is body.
 * Back-pressure: the engine's end is paused while the HTTP response's buffer is full, so the
 * channel fills and the worker's writer is paused in turn.
 */
export class ResponseStream implements LocalReaderHandlers {
  private status = 200;
  private readonly headers: OutgoingHttpHeaders;
  private committed = false;
  private ended = false;
  private reader: LocalReader | undefined;

  constructor(
    private readonly res: ServerResponse,
    extraHeaders: OutgoingHttpHeaders,
    /** Called once, when the status line has been sent. */
    private readonly onCommit: () => void,
    /** The channel ended abnormally (its writer vanished) before anything was committed. */
    private readonly onBroken: (code: number, reason: string) => void,
  ) {
    this.headers = { ...extraHeaders };
    res.on('drain', () => this.reader?.resume());
  }

  get isCommitted(): boolean {
    return this.committed;
  }

  /** The engine's end of the response channel this stream reads (messages start after this call). */
  attach(reader: LocalReader): void {
    this.reader = reader;
  }

  /** Stops reading (the buffered path won, the request timed out or the client left). */
  cancel(): void {
    this.ended = true;
    this.reader?.cancel();
  }

  message(item: ChannelItem): void {
    if (this.ended) return;
    if (!item.binary) {
      if (!this.committed) this.control(item.data.toString('utf8'));
      return;
    }
    this.commit();
    if (!this.res.write(item.data)) this.reader?.pause();
  }

  /** `complete` (1000) is the writer's clean end; any other means it vanished mid-response. */
  end(why: ChannelCloseKind): void {
    if (this.ended) return;
    this.ended = true;
    if (why.code === 1000) {
      this.commit();
      this.res.end();
    } else if (this.committed) {
      // A truncated body must not look complete to the client.
      this.res.destroy();
    } else {
      this.onBroken(why.code, why.reason);
    }
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
    if (
      type === 'set_status' &&
      typeof status_code === 'number' &&
      Number.isInteger(status_code) &&
      status_code >= 200 &&
      status_code <= 599
    ) {
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
}
