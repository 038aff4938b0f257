import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * The error codes the HTTP server itself answers with, and their statuses. Handler and
 * middleware errors keep the code of the function that failed (status 500).
 */
export const HttpErrorCode = {
  notFound: { code: 'NOT_FOUND', status: 404 },
  /** ours: the original answers 405 with an empty body. */
  methodNotAllowed: { code: 'METHOD_NOT_ALLOWED', status: 405 },
  /** ours: a URL whose path parameters cannot be percent-decoded, or a malformed multipart body. */
  badRequest: { code: 'BAD_REQUEST', status: 400 },
  /** ours: body over `body_limit_bytes`. */
  payloadTooLarge: { code: 'PAYLOAD_TOO_LARGE', status: 413 },
  /** ours: more connections from one client address than `max_connections_per_address`. */
  tooManyConnections: { code: 'TOO_MANY_CONNECTIONS', status: 429 },
  /** ours: more request headers than `max_header_count`. */
  tooManyHeaders: { code: 'REQUEST_HEADER_FIELDS_TOO_LARGE', status: 431 },
  conditionNotMet: { code: 'CONDITION_NOT_MET', status: 422 },
  middlewareTimeout: { code: 'MIDDLEWARE_TIMEOUT', status: 504 },
  /** ours: the original's whole-request timeout answers 504 with an empty body. */
  timeout: { code: 'TIMEOUT', status: 504 },
  /**
   * ours: every slot busy and `max_queued_requests` already waiting, or the node holds
   * `engine.channels.max_open` data channels; answered with `Retry-After: 1`.
   */
  serverBusy: { code: 'SERVER_BUSY', status: 503 },
  internal: { code: 'INTERNAL_ERROR', status: 500 },
} as const;

export type HttpErrorKind = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

export interface Envelope {
  error: { code: string; message: string; error_id?: string };
  skipped?: true;
}

/** A hex id put on 5xx envelopes and in the log line, so a user's report finds the log. */
export function newErrorId(): string {
  return randomBytes(8).toString('hex');
}

/** Sends `{"error":{code,message,error_id?}}`; 5xx answers get an `error_id`. */
export function sendEnvelope(
  res: ServerResponse,
  status: number,
  envelope: Envelope,
  headers: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(envelope);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function envelope(code: string, message: string, errorId?: string): Envelope {
  return { error: errorId === undefined ? { code, message } : { code, message, error_id: errorId } };
}
