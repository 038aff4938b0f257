import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { EngineError, ErrorCode, isErrorBody } from '../../protocol/errors';
import type { InboundMessage, Json } from '../../protocol/messages';
import type { Logger } from '../../observability/logger';

/** Reconnection backoff, in ms: doubles from the first to the cap. */
export const RECONNECT_FIRST_MS = 250;
export const RECONNECT_MAX_MS = 10_000;
/** Calls waiting for the remote's answer at most; one more is refused `limit_exceeded`. */
export const MAX_PENDING_CALLS = 10_000;
/** The remote engine must answer the WebSocket upgrade within this, in ms. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface RemoteEngineOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>` (the remote's worker token). */
  token?: string;
  /** How this engine is named among the remote's workers. */
  workerName: string;
  logger: Logger;
}

/** The W3C trace context the remote engine sent with an invocation of a served function. */
export interface ServedContext {
  traceparent?: string;
  baggage?: string;
}

/** A function served to the remote engine: its payload in, our result (undefined = none) out. */
export type ServedHandler = (data: Json, context: ServedContext) => Promise<Json | undefined>;

interface Pending {
  functionId: string;
  resolve: (result: Json | undefined) => void;
  reject: (err: EngineError) => void;
  timer: NodeJS.Timeout;
}

/**
 * This engine as an ordinary worker of another engine (iii's or ours), over the iii protocol:
 * it calls the remote's functions, serves functions to it, and binds the remote's triggers to
 * them. Registrations are sent again after every reconnection (backoff RECONNECT_FIRST_MS
 * doubling to RECONNECT_MAX_MS, forever). Every call ends: with the remote's answer, at its
 * deadline (`invocation_timeout`), or with `bridge_unavailable` when the link is down at the
 * deadline or drops while the call waits (it may then have run on the remote).
 */
export class RemoteEngine {
  private socket: WebSocket | undefined;
  private connected = false;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly served = new Map<string, { description?: string; handler: ServedHandler }>();
  private readonly bindings = new Map<string, { trigger_type: string; function_id: string; config: Json }>();
  /** Calls waiting for the link to come up. */
  private readonly waiting = new Set<() => void>();

  constructor(private readonly options: RemoteEngineOptions) {}

  start(): void {
    this.connect();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Offers `functionId` to the remote engine (now, and after each reconnection). */
  serve(functionId: string, handler: ServedHandler, description?: string): void {
    this.served.set(functionId, description === undefined ? { handler } : { description, handler });
    this.send(registration(functionId, description));
  }

  /** Binds a trigger of the remote engine to a function we serve there. */
  bind(id: string, triggerType: string, functionId: string, config: Json): void {
    this.bindings.set(id, { trigger_type: triggerType, function_id: functionId, config });
    this.send({ type: 'registertrigger', id, trigger_type: triggerType, function_id: functionId, config });
  }

  /** Removes a binding made with `bind` (now, and from the registrations sent after a reconnection). */
  unbind(id: string): void {
    const binding = this.bindings.get(id);
    if (!binding) return;
    this.bindings.delete(id);
    this.send({ type: 'unregistertrigger', id, trigger_type: binding.trigger_type });
  }

  /** Calls a remote function and resolves with its result (undefined when it returned none). */
  async call(functionId: string, data: Json, timeoutMs: number): Promise<Json | undefined> {
    const deadline = Date.now() + timeoutMs;
    await this.untilConnected(functionId, deadline);
    if (this.pending.size >= MAX_PENDING_CALLS) {
      throw new EngineError(
        ErrorCode.limitExceeded,
        `The bridge to ${this.options.url} has ${MAX_PENDING_CALLS} calls waiting for an answer; try again later.`,
      );
    }
    const invocationId = randomUUID();
    return new Promise<Json | undefined>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(invocationId);
          reject(
            new EngineError(
              ErrorCode.timeout,
              `${functionId} on ${this.options.url} did not answer within ${timeoutMs} ms.`,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.pending.set(invocationId, { functionId, resolve, reject, timer });
      this.send({ type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data });
    });
  }

  /** Fire and forget; refused `bridge_unavailable` when the link is down (nothing is queued). */
  callVoid(functionId: string, data: Json): void {
    if (!this.connected) throw this.unavailable(functionId, 'is not connected');
    this.send({ type: 'invokefunction', function_id: functionId, data, action: { type: 'void' } });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const wake of this.waiting) wake();
    this.failPending('the engine is shutting down');
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(1000);
      setTimeout(() => socket.terminate(), 1000).unref();
    });
  }

  private connect(): void {
    if (this.closed) return;
    const headers = this.options.token === undefined ? undefined : { authorization: `Bearer ${this.options.token}` };
    const socket = new WebSocket(this.options.url, {
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(headers ? { headers } : {}),
    });
    this.socket = socket;
    socket.on('open', () => {
      this.connected = true;
      this.attempt = 0;
      this.options.logger.info({ url: this.options.url }, 'bridge: connected to the remote engine');
      this.send({ type: 'registerservice', id: this.options.workerName, name: this.options.workerName });
      for (const [id, { description }] of this.served) this.send(registration(id, description));
      for (const [id, binding] of this.bindings) this.send({ type: 'registertrigger', id, ...binding });
      for (const wake of this.waiting) wake();
    });
    socket.on('message', (data, isBinary) => {
      if (!isBinary) this.onMessage(data.toString());
    });
    socket.on('unexpected-response', (_request, response) => {
      this.options.logger.warn(
        { url: this.options.url, status: response.statusCode },
        `bridge: the remote engine refused the connection (HTTP ${response.statusCode}); check the url and the token`,
      );
      socket.terminate();
    });
    socket.on('error', (err) => {
      if (this.attempt === 0)
        this.options.logger.warn({ err, url: this.options.url }, 'bridge: cannot reach the remote engine; retrying');
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (this.connected)
        this.options.logger.warn(
          { url: this.options.url },
          'bridge: the connection to the remote engine closed; reconnecting',
        );
      this.connected = false;
      this.socket = undefined;
      this.failPending('lost the connection before the answer came (the call may have run)');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** this.attempt);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private onMessage(text: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.options.logger.warn(
        { url: this.options.url },
        'bridge: the remote engine sent a frame that is not JSON; ignored',
      );
      return;
    }
    switch (message['type']) {
      case 'invocationresult':
        return this.settle(message);
      case 'invokefunction':
        return void this.runServed(message);
      case 'error':
        this.options.logger.warn(
          { url: this.options.url, error: message['error'] },
          'bridge: the remote engine reported an error',
        );
        return;
      case 'triggerregistrationresult':
        // Only a refusal carries news; the binding stays listed and is sent again after a reconnection.
        if (message['error'] !== undefined && message['error'] !== null) {
          this.options.logger.warn(
            { url: this.options.url, trigger: message['id'], error: message['error'] },
            'bridge: the remote engine refused a trigger binding',
          );
        }
        return;
      default:
        return; // workerregistered, pong: nothing to do
    }
  }

  private settle(message: Record<string, unknown>): void {
    const id = message['invocation_id'];
    const call = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (!call) return;
    this.pending.delete(id as string);
    clearTimeout(call.timer);
    const error = message['error'];
    if (error !== undefined && error !== null) {
      call.reject(
        isErrorBody(error)
          ? new EngineError(error.code, error.message)
          : new EngineError(
              ErrorCode.invalidMessage,
              `${call.functionId} failed on ${this.options.url} with a malformed error`,
            ),
      );
      return;
    }
    call.resolve(message['result'] === null ? undefined : (message['result'] as Json | undefined));
  }

  private async runServed(message: Record<string, unknown>): Promise<void> {
    const functionId = String(message['function_id']);
    const invocationId = typeof message['invocation_id'] === 'string' ? message['invocation_id'] : undefined;
    const served = this.served.get(functionId);
    let reply: InboundMessage;
    try {
      if (!served) throw new EngineError(ErrorCode.functionNotFound, `${functionId} is not served over this bridge.`);
      const context: ServedContext = {};
      if (typeof message['traceparent'] === 'string') context.traceparent = message['traceparent'];
      if (typeof message['baggage'] === 'string') context.baggage = message['baggage'];
      const result = await served.handler((message['data'] ?? null) as Json, context);
      reply = {
        type: 'invocationresult',
        invocation_id: invocationId ?? '',
        function_id: functionId,
        ...(result === undefined || result === null ? {} : { result }),
      };
    } catch (err) {
      const { code, message: text } = EngineError.from(err);
      reply = {
        type: 'invocationresult',
        invocation_id: invocationId ?? '',
        function_id: functionId,
        error: { code, message: text },
      };
    }
    if (invocationId !== undefined) this.send(reply);
  }

  /** Waits for the link until `deadline`; throws `bridge_unavailable` if it does not come. */
  private async untilConnected(functionId: string, deadline: number): Promise<void> {
    while (!this.connected) {
      if (this.closed) throw this.unavailable(functionId, 'is closed (the engine is shutting down)');
      const left = deadline - Date.now();
      if (left <= 0) throw this.unavailable(functionId, 'is not connected');
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiting.add(wake);
      });
    }
  }

  private failPending(reason: string): void {
    for (const [id, call] of this.pending) {
      clearTimeout(call.timer);
      call.reject(this.unavailable(call.functionId, reason));
      this.pending.delete(id);
    }
  }

  private unavailable(functionId: string, reason: string): EngineError {
    return new EngineError(ErrorCode.bridgeUnavailable, `${functionId}: the bridge to ${this.options.url} ${reason}.`);
  }

  private send(message: InboundMessage): void {
    if (this.connected && this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

function registration(id: string, description: string | undefined): InboundMessage {
  return description === undefined ? { type: 'registerfunction', id } : { type: 'registerfunction', id, description };
}
