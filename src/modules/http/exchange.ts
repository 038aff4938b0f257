import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from '../../observability/logger';
import { EngineError, ErrorCode, isErrorBody } from '../../protocol/errors';
import type { ChannelRef, Json } from '../../protocol/messages';
import { ChannelClose } from '../../transport/channels';
import { conditionPasses } from '../condition';
import type { ModuleHost } from '../../engine/module';
import { MalformedBodyError, hasNoBody, parseBody, readRequestBody } from './body';
import { HttpErrorCode, envelope, newErrorId, sendEnvelope, type Envelope, type HttpErrorKind } from './envelope';
import { callMiddleware, type GlobalMiddleware, type MiddlewareRequest } from './middleware';
import { requestHeaders } from './request';
import { ResponseStream } from './response-stream';
import { sendBuffered, sendMiddlewareResponse } from './response';
import type { HttpRoute } from './route';

/** Request bodies go to the request-body channel in binary frames of this many bytes (as the SDK writes). */
export const BODY_FRAME_BYTES = 64 * 1024;
/** The router's own deadline on a call trails the request's, so the request's 504 is what the client sees. */
const INVOKE_DEADLINE_SLACK_MS = 1000;

export interface ExchangeDeps {
  host: ModuleHost;
  log: Logger;
  /** `default_timeout`: whole request (from the moment it holds a slot), and each middleware. */
  timeoutMs: number;
  bodyLimitBytes: number;
  middleware: GlobalMiddleware[];
}

/** What the pipeline is waiting for, to say what timed out (with `stageFunctionId` for a function). */
type Stage = 'body' | 'middleware' | 'condition' | 'handler';

const EMPTY_BODY = Buffer.alloc(0);

/** The two refs of one data channel, as `ChannelManager.create` makes them. */
interface ChannelPair {
  writer: ChannelRef;
  reader: ChannelRef;
}

/**
 * One matched request through the pipeline of §5.3: body (413 over the limit), global middleware,
 * condition (422), route middleware, handler; then a buffered or streamed response. Every step
 * first checks that the exchange is still open: a timeout or a client that left ends it.
 */
export class Exchange {
  private finished = false;
  /** `end` ran: the response closed or the exchange was aborted. */
  private ended = false;
  private stage: Stage = 'body';
  private stageFunctionId = '';
  private stream: ResponseStream | undefined;
  /** The response channel ended abnormally before a response was committed. */
  private streamBroken: EngineError | undefined;
  private handlerReturned = false;
  private readonly timer: NodeJS.Timeout;
  /** Stop watching the request's channels for the worker's ends (set while the handler runs). */
  private cancelBodyWatch: (() => void) | undefined;
  private cancelResponseWatch: (() => void) | undefined;
  /** The request's two channels, released when the exchange ends (if the worker never used them). */
  private bodyChannelId: string | undefined;
  private responseChannelId: string | undefined;
  private readonly deadline: number;

  constructor(
    private readonly deps: ExchangeDeps,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly route: HttpRoute,
    private readonly pathParams: Record<string, string>,
    private readonly query: Record<string, string>,
    /** Shared between requests: copied, never modified. */
    private readonly cors: Readonly<OutgoingHttpHeaders>,
    /** Called once when the exchange ends (response closed, or aborted). */
    private readonly onEnd: (exchange: Exchange) => void,
  ) {
    this.deadline = Date.now() + deps.timeoutMs;
    this.timer = setTimeout(() => this.timedOut(), deps.timeoutMs);
    // `close` is emitted once per response; `on` spares the wrapper `once` makes.
    res.on('close', () => this.end());
  }

  async run(): Promise<void> {
    try {
      await this.steps();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Ends the exchange from outside (module stopping): the client gets nothing more. */
  abort(): void {
    this.end();
    this.res.destroy();
  }

  /**
   * The steps a request does not need cost nothing: no body to read, no middleware, no condition
   * and a body that parses synchronously are not awaited (each await is a microtask and a promise).
   */
  private async steps(): Promise<void> {
    const { bodyLimitBytes, middleware } = this.deps;
    const raw = hasNoBody(this.req) ? EMPTY_BODY : await readRequestBody(this.req, bodyLimitBytes);
    if (this.finished) return;
    if (raw === 'too_large') {
      // The rest of the body is not read, so the connection cannot carry another request.
      this.reply(
        HttpErrorCode.payloadTooLarge,
        `Request body is larger than body_limit_bytes (${bodyLimitBytes} bytes)`,
        { connection: 'close' },
      );
      return;
    }
    const headers = requestHeaders(this.req);
    const method = (this.req.method ?? 'GET').toUpperCase();
    const { route } = this;
    for (const { functionId } of middleware) {
      if (!(await this.middleware(functionId, headers, method))) return;
    }

    let body: Json;
    try {
      const parsed = parseBody(headers['content-type'], raw);
      body = parsed instanceof Promise ? await parsed : parsed;
    } catch (err) {
      if (!(err instanceof MalformedBodyError)) throw err;
      this.reply(HttpErrorCode.badRequest, err.message);
      return;
    }

    if (route.conditionFunctionId !== undefined) {
      this.stage = 'condition';
      this.stageFunctionId = route.conditionFunctionId;
      const passes = await conditionPasses(
        this.deps.host,
        route.conditionFunctionId,
        this.request(headers, method, body),
        route.metadata,
      );
      if (this.finished) return;
      if (!passes) {
        this.send(HttpErrorCode.conditionNotMet.status, {
          ...envelope(HttpErrorCode.conditionNotMet.code, 'Request condition not met'),
          skipped: true,
        });
        return;
      }
    }
    for (const functionId of route.middlewareFunctionIds) {
      if (!(await this.middleware(functionId, headers, method))) return;
    }
    await this.handler(headers, method, body, raw);
  }

  /** The request object of §5.4 as a condition sees it; the handler's gets the channel refs too. */
  private request(headers: Record<string, string>, method: string, body: Json): Record<string, Json> {
    const { route } = this;
    return {
      query_params: this.query,
      path_params: this.pathParams,
      headers,
      path: route.pattern,
      method,
      body,
      trigger: { type: 'http', path: route.pattern, method: route.method },
    };
  }

  /** Runs one middleware; false when it answered the request (or the exchange ended meanwhile). */
  private async middleware(functionId: string, headers: Record<string, string>, method: string): Promise<boolean> {
    this.stage = 'middleware';
    this.stageFunctionId = functionId;
    // Made only when a middleware is configured; it sees no body and no channels.
    const seen: MiddlewareRequest = { path_params: this.pathParams, query_params: this.query, headers, method };
    const outcome = await callMiddleware(this.deps.host, this.deps.log, functionId, seen, this.invokeTimeoutMs());
    if (this.finished) return false;
    if (outcome.action === 'continue') return true;
    this.finished = true;
    sendMiddlewareResponse(this.res, outcome.response, this.cors);
    return false;
  }

  private async handler(headers: Record<string, string>, method: string, body: Json, raw: Buffer): Promise<void> {
    const { host } = this.deps;
    const { channels } = host;
    const { route } = this;
    const created = this.createChannels();
    if (!created) return;
    const [bodyChannel, responseChannel] = created;
    // The engine's ends attach only once the worker's do: most handlers never touch the channels.
    this.cancelBodyWatch = channels.onAttached(bodyChannel.reader.channel_id, 'reader', () =>
      this.sendBody(bodyChannel.writer, raw),
    );
    this.cancelResponseWatch = channels.onAttached(responseChannel.writer.channel_id, 'writer', () =>
      this.startStream(responseChannel.reader),
    );
    const data = this.request(headers, method, body);
    data.request_body = { ...bodyChannel.reader };
    data.response = { ...responseChannel.writer };

    this.stage = 'handler';
    this.stageFunctionId = route.functionId;
    let result: Json | undefined;
    try {
      ({ result } = await host.invoke({
        functionId: route.functionId,
        data,
        metadata: route.metadata,
        timeoutMs: this.invokeTimeoutMs(),
      }));
    } catch (err) {
      // Once the stream is committed the status is out; the stream runs to its end.
      if (this.stream?.isCommitted) {
        this.deps.log.warn(
          { err: EngineError.from(err).toBody(), function_id: this.route.functionId },
          'handler failed after streaming its response',
        );
        return;
      }
      throw err;
    }
    this.handlerReturned = true;
    if (this.finished || this.stream?.isCommitted) return;
    if (result === undefined || result === null) {
      // No value: the response comes through the channel (or the request times out).
      if (this.streamBroken) throw this.streamBroken;
      this.startStream(responseChannel.reader);
      return;
    }
    this.stream?.cancel();
    this.finished = true;
    sendBuffered(this.res, result, this.cors);
  }

  /**
   * The request's body and response channels. When the node holds `engine.channels.max_open`
   * channels the request is answered 503 SERVER_BUSY (Retry-After: 1) and undefined returned; a
   * channel made before the refusal is released by `end`.
   */
  private createChannels(): [ChannelPair, ChannelPair] | undefined {
    const { channels } = this.deps.host;
    try {
      const body = channels.create();
      this.bodyChannelId = body.reader.channel_id;
      const response = channels.create();
      this.responseChannelId = response.reader.channel_id;
      return [body, response];
    } catch (err) {
      const error = EngineError.from(err);
      if (error.code !== ErrorCode.limitExceeded) throw err;
      this.reply(HttpErrorCode.serverBusy, error.message, { 'retry-after': '1' });
      return undefined;
    }
  }

  private startStream(reader: ChannelRef): void {
    if (this.stream || this.finished) return;
    const stream = new ResponseStream(
      this.res,
      this.cors,
      () => {
        this.finished = true;
        clearTimeout(this.timer);
      },
      (code, reason) => {
        // The handler's own outcome (usually invocation_stopped) says more, if it is still to come.
        this.streamBroken = new EngineError(
          ErrorCode.channelSendFailed,
          `The response channel closed (${code}${reason ? ` ${reason}` : ''}) before a response was sent`,
        );
        if (this.handlerReturned) this.fail(this.streamBroken);
      },
    );
    this.stream = stream;
    const end = this.deps.host.channels.openLocalReader(reader, stream);
    // The channel is gone (expired, engine closing): as if its writer had vanished.
    if (end) stream.attach(end);
    else stream.end(ChannelClose.writerGone);
  }

  /** The worker opened the request-body channel: the engine writes the raw body, as the reader takes it, and ends. */
  private sendBody(writer: ChannelRef, raw: Buffer): void {
    const end = this.deps.host.channels.openLocalWriter(writer);
    if (!end) return;
    let offset = 0;
    const pump = (): void => {
      while (offset < raw.length) {
        const frame = raw.subarray(offset, offset + BODY_FRAME_BYTES);
        offset += frame.length;
        if (!end.write(frame, true)) return; // resumed by onDrain, unless the channel closed
      }
      end.end();
    };
    end.onDrain = pump;
    pump();
  }

  private invokeTimeoutMs(): number {
    return Math.max(0, this.deadline - Date.now()) + INVOKE_DEADLINE_SLACK_MS;
  }

  private timedOut(): void {
    if (this.finished) return;
    const { stage } = this;
    const ms = this.deps.timeoutMs;
    if (stage === 'middleware') {
      this.reply(HttpErrorCode.middlewareTimeout, 'Middleware timeout');
      return;
    }
    const waitingFor = stage === 'body' ? 'the request body' : `${stage} function ${this.stageFunctionId}`;
    this.reply(HttpErrorCode.timeout, `Request timed out after ${ms} ms (default_timeout) waiting for ${waitingFor}`);
  }

  /**
   * An error from a function the pipeline called: 500 with its code and message. Anything else
   * is a bug of ours: 500 INTERNAL_ERROR, details only in the log.
   */
  private fail(err: unknown): void {
    if (this.finished) return;
    const fromFunction = err instanceof EngineError || isErrorBody(err);
    const { code, status } = HttpErrorCode.internal;
    const error = fromFunction
      ? EngineError.from(err)
      : new EngineError(code, 'Internal error while serving the request');
    const errorId = newErrorId();
    this.deps.log.warn(
      {
        error_id: errorId,
        code: error.code,
        message: error.message,
        err: fromFunction ? undefined : err,
        route: `${this.route.method} ${this.route.pattern}`,
      },
      'http request failed',
    );
    this.send(status, envelope(error.code, error.message, errorId));
  }

  private reply(kind: HttpErrorKind, message: string, headers?: OutgoingHttpHeaders): void {
    const errorId = kind.status >= 500 ? newErrorId() : undefined;
    if (errorId !== undefined)
      this.deps.log.warn(
        { error_id: errorId, code: kind.code, route: `${this.route.method} ${this.route.pattern}` },
        message,
      );
    this.send(kind.status, envelope(kind.code, message, errorId), headers);
  }

  private send(status: number, body: Envelope, headers?: OutgoingHttpHeaders): void {
    if (this.finished) return;
    this.finished = true;
    this.stream?.cancel();
    sendEnvelope(this.res, status, body, headers === undefined ? this.cors : { ...this.cors, ...headers });
  }

  /** The response is done or the client left: stop timers, watches and the stream; free unused channels. */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.finished = true;
    clearTimeout(this.timer);
    this.cancelBodyWatch?.();
    this.cancelResponseWatch?.();
    this.cancelBodyWatch = this.cancelResponseWatch = undefined;
    this.stream?.cancel();
    const { channels } = this.deps.host;
    if (this.bodyChannelId !== undefined) channels.release(this.bodyChannelId);
    if (this.responseChannelId !== undefined) channels.release(this.responseChannelId);
    this.bodyChannelId = this.responseChannelId = undefined;
    this.onEnd(this);
  }
}
