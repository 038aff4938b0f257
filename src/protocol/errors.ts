import type { ErrorBody } from './messages';

/**
 * The one registry of error codes the engine puts on the wire. The iii v0.22 codes keep their
 * spelling (mostly snake_case, a few upper-case); codes marked "ours" do not exist in the
 * original and are listed in docs/PROTOCOL.md under "Differences".
 */
export const ErrorCode = {
  functionNotFound: 'function_not_found',
  invocationStopped: 'invocation_stopped',
  forbidden: 'FORBIDDEN',
  enqueueError: 'enqueue_error',
  channelSendFailed: 'channel_send_failed',
  invocationError: 'invocation_error',
  deserializationError: 'deserialization_error',
  invalidArguments: 'INVALID_ARGUMENTS',
  notFound: 'NOT_FOUND',
  triggerRegistrationFailed: 'trigger_registration_failed',
  unregisterFailed: 'unregister_failed',
  urlValidationFailed: 'url_validation_failed',
  httpRequestFailed: 'http_request_failed',
  httpResponseFailed: 'http_response_failed',
  httpError: 'http_error',
  invalidResponse: 'invalid_response',
  authError: 'AUTH_ERROR',
  /** ours: the engine-side deadline of a synchronous call passed. */
  timeout: 'invocation_timeout',
  /** ours: a frame that could be correlated to a call but not decoded. */
  invalidMessage: 'invalid_message',
  /** ours: a configured limit (pending calls, payload size) refused the call. */
  limitExceeded: 'limit_exceeded',
  /** ours: an `invokefunction` or `invocationresult` frame larger than `max_payload_bytes`. */
  payloadTooLarge: 'payload_too_large',
  /** ours: the node is draining and accepts no new calls. */
  shuttingDown: 'engine_shutting_down',
  /** ours: a bridged call could not reach the other engine (link down at its deadline, or lost while it waited). */
  bridgeUnavailable: 'bridge_unavailable',
  /** ours: HTTP 401 on a worker-port upgrade without the right shared worker token. */
  unauthorized: 'UNAUTHORIZED',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error that crosses the wire as an ErrorBody. */
export class EngineError extends Error {
  readonly code: string;
  readonly stacktrace?: string;

  constructor(code: string, message: string, stacktrace?: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    this.stacktrace = stacktrace;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.stacktrace !== undefined) body.stacktrace = this.stacktrace;
    return body;
  }

  static from(err: unknown, fallbackCode: string = ErrorCode.invocationError): EngineError {
    if (err instanceof EngineError) return err;
    if (isErrorBody(err)) return new EngineError(err.code, err.message, err.stacktrace);
    if (err instanceof Error) return new EngineError(fallbackCode, err.message);
    return new EngineError(fallbackCode, String(err));
  }
}

export function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ErrorBody).code === 'string' &&
    typeof (value as ErrorBody).message === 'string'
  );
}

export const errors = {
  functionNotFound: (id: string) => new EngineError(ErrorCode.functionNotFound, `Function ${id} not found`),
  invocationStopped: () => new EngineError(ErrorCode.invocationStopped, 'Invocation stopped'),
  timeout: (id: string, ms: number) =>
    new EngineError(ErrorCode.timeout, `Invocation of ${id} timed out after ${ms} ms (engine deadline)`),
};
