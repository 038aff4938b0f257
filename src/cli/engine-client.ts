import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { Json } from '../protocol/messages';
import { ErrorCode, isErrorBody } from '../protocol/errors';

/**
 * A one-shot client of a running engine for the operator CLI: one WebSocket on the worker port
 * (the iii protocol, as any worker), `invokefunction` with an `invocation_id`, the matching
 * `invocationresult`. No reconnection and no registration: a command either gets its answers
 * before its deadline or fails with a ConnectionFailure saying why.
 *
 * Unlike the bridge's RemoteEngine (reconnects forever, logs refusals and retries), every
 * failure here is reported to the caller, so the CLI can turn it into an exit code.
 */

/** Why no answer came: the CLI prints `reason` with the message, then exits 3. */
export type ConnectionFailureReason = 'unreachable' | 'auth' | 'refused' | 'closed' | 'timeout';

export class ConnectionFailure extends Error {
  constructor(
    readonly reason: ConnectionFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectionFailure';
  }
}

/** The function answered with an error: its iii code and message. */
export class FunctionFailure extends Error {
  constructor(
    readonly functionId: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'FunctionFailure';
  }
}

export interface ConnectOptions {
  /** `ws://host:port` or `wss://host:port` of the engine's worker port. */
  url: string;
  /** The engine's worker token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Every step (connecting, each call) ends by this time (Date.now() ms). */
  deadlineMs: number;
}

interface Pending {
  functionId: string;
  resolve: (result: Json | undefined) => void;
  reject: (err: Error) => void;
}

/** Longest a polite close waits for the engine's close frame before the socket is cut, in ms. */
const CLOSE_WAIT_MS = 500;

export class EngineClient {
  /** The id the engine gave this connection (`workerregistered`), once it has said. */
  workerId: string | undefined;
  private readonly pending = new Map<string, Pending>();
  private ended: ConnectionFailure | undefined;

  private constructor(
    private readonly socket: WebSocket,
    private readonly options: ConnectOptions,
  ) {
    socket.on('message', (data, isBinary) => {
      if (!isBinary) this.onMessage(data.toString());
    });
    socket.on('close', (code, reason) => {
      const text = reason.toString();
      // 1008 (policy violation): the engine's answer to a refused authentication.
      this.fail(
        new ConnectionFailure(
          code === 1008 ? 'auth' : 'closed',
          `the engine at ${options.url} closed the connection before answering (code ${code}${text ? `: ${text}` : ''})`,
        ),
      );
    });
    socket.on('error', (err) =>
      this.fail(new ConnectionFailure('closed', `the connection to ${options.url} failed: ${err.message}`)),
    );
  }

  /** Opens the connection; rejects with a ConnectionFailure (unreachable, auth, refused, timeout). */
  static connect(options: ConnectOptions): Promise<EngineClient> {
    const left = options.deadlineMs - Date.now();
    if (left <= 0) return Promise.reject(timeoutFailure(options, 'connecting'));
    let socket: WebSocket;
    try {
      socket = new WebSocket(options.url, {
        handshakeTimeout: left,
        ...(options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } }),
      });
    } catch (err) {
      return Promise.reject(
        new ConnectionFailure('unreachable', `cannot connect to ${options.url}: ${(err as Error).message}`),
      );
    }
    return new Promise<EngineClient>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: EngineClient | ConnectionFailure) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners('open');
        socket.removeAllListeners('error');
        socket.removeAllListeners('unexpected-response');
        if (outcome instanceof ConnectionFailure) {
          socket.on('error', () => undefined);
          socket.terminate();
          reject(outcome);
        } else resolve(outcome);
      };
      // The handshake timeout covers the upgrade; this also covers a TCP connect that never ends.
      const timer = setTimeout(() => settle(timeoutFailure(options, 'connecting')), left);
      socket.once('open', () => settle(new EngineClient(socket, options)));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const timedOut = /timed out|timeout/i.test(err.message);
        settle(
          timedOut
            ? timeoutFailure(options, 'connecting')
            : new ConnectionFailure('unreachable', `cannot connect to ${options.url}: ${err.code ?? err.message}`),
        );
      });
      socket.once('unexpected-response', (_request, response) => {
        void refusal(options.url, response).then(settle);
      });
    });
  }

  /** Calls `functionId` and resolves with its result (undefined when it returned none). */
  call(functionId: string, data: Json): Promise<Json | undefined> {
    if (this.ended) return Promise.reject(this.ended);
    const left = this.options.deadlineMs - Date.now();
    if (left <= 0) return Promise.reject(timeoutFailure(this.options, functionId));
    const invocationId = randomUUID();
    return new Promise<Json | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(invocationId);
        reject(timeoutFailure(this.options, functionId));
      }, left);
      const done =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      this.pending.set(invocationId, { functionId, resolve: done(resolve), reject: done(reject) });
      this.socket.send(
        JSON.stringify({ type: 'invokefunction', invocation_id: invocationId, function_id: functionId, data }),
      );
    });
  }

  /** Closes politely (a close frame), cutting the socket if the engine does not answer it soon. */
  async close(): Promise<void> {
    this.ended ??= new ConnectionFailure('closed', 'the client closed the connection');
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000);
    });
  }

  private onMessage(text: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (message['type'] === 'workerregistered' && typeof message['worker_id'] === 'string') {
      this.workerId = message['worker_id'];
      return;
    }
    if (message['type'] === 'error' && isErrorBody(message['error']) && message['error'].code === ErrorCode.authError) {
      // The RBAC auth function refused this connection; the engine closes it next. (Other
      // `error` frames answer registrations, which this client never makes.)
      this.fail(
        new ConnectionFailure(
          'auth',
          `auth refused by ${this.options.url}: ${message['error'].code}: ${message['error'].message}`,
        ),
      );
      return;
    }
    if (message['type'] !== 'invocationresult') return;
    const id = message['invocation_id'];
    const call = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (!call) return;
    this.pending.delete(id as string);
    const error = message['error'];
    if (error !== undefined && error !== null) {
      const body = isErrorBody(error)
        ? error
        : {
            code: 'invalid_message',
            message: `${call.functionId} failed with a malformed error: ${JSON.stringify(error)}`,
          };
      call.reject(new FunctionFailure(call.functionId, body.code, body.message));
      return;
    }
    call.resolve(message['result'] === null ? undefined : (message['result'] as Json | undefined));
  }

  private fail(failure: ConnectionFailure): void {
    this.ended ??= failure;
    for (const [id, call] of this.pending) {
      this.pending.delete(id);
      call.reject(failure);
    }
  }
}

function timeoutFailure(options: ConnectOptions, what: string): ConnectionFailure {
  return new ConnectionFailure(
    'timeout',
    `timeout: ${what === 'connecting' ? `no connection to ${options.url}` : `no answer from ${what} on ${options.url}`} before the deadline (--timeout)`,
  );
}

/** An HTTP answer instead of the upgrade: 401/403 are the token (or protected mode), the rest a refusal. */
async function refusal(url: string, response: IncomingMessage): Promise<ConnectionFailure> {
  const status = response.statusCode ?? 0;
  const body = await readBody(response);
  let detail = body.trim();
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (isErrorBody(parsed.error)) detail = `${parsed.error.code}: ${parsed.error.message}`;
  } catch {
    // not JSON: the text as it came
  }
  const what = status === 401 || status === 403 ? 'auth refused' : 'connection refused';
  return new ConnectionFailure(
    status === 401 || status === 403 ? 'auth' : 'refused',
    `${what} by ${url} (HTTP ${status})${detail ? `: ${detail}` : ''}`,
  );
}

/** The body of a refusal, at most 4 KiB, and never waiting more than a moment for it. */
function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      response.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(finish, 1000);
    response.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= 4096) finish();
    });
    response.once('end', finish);
    response.once('error', finish);
  });
}
