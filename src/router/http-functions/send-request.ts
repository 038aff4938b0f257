import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import type { LookupFunction } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { EngineError, ErrorCode } from '../../protocol/errors';
import { guardedAgents } from './agents';
import { readBody } from './read-body';
import type { ResponseBudget } from './response-budget';
import { displayUrl } from './url-validation';

/** setTimeout fires at once for delays above 2^31-1 ms; longer timeouts are capped (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface OutgoingCall {
  url: URL;
  method: string;
  /** Raw header list [name, value, ...], complete with Host and Content-Length. */
  headers: string[];
  body: Buffer;
  /** Covers connecting, sending and reading the whole response. */
  timeoutMs: number;
  maxResponseBytes: number;
  /** Engine-wide budget of response bytes being read. */
  responseBudget: ResponseBudget;
  /**
   * The lookup that judges every address before the socket connects (block_private_ips; see
   * guarded-lookup.ts); undefined connects without a check, through Node's global agents.
   */
  guard: LookupFunction | undefined;
}

export interface RawResponse {
  status: number;
  body: Buffer;
}

/** The message of an error and of its causes; AggregateError (one per address tried) expanded. */
export function describeCause(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) {
      parts.push(current.errors.map((inner) => describeCause(inner)).join('; '));
      break;
    }
    if (current instanceof Error) {
      const code = (current as NodeJS.ErrnoException).code;
      parts.push(current.message !== '' ? current.message : (code ?? current.name));
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(': ');
}

/**
 * Sends one request and buffers the response. Redirects are not followed (Node never does).
 * Failures are EngineErrors: guard refusals keep their url_validation_failed, anything before
 * the response head is http_request_failed, anything while reading the body is
 * http_response_failed.
 */
export function sendRequest(call: OutgoingCall): Promise<RawResponse> {
  const where = displayUrl(call.url);
  const requestFailed = (err: unknown): EngineError =>
    err instanceof EngineError
      ? err
      : new EngineError(ErrorCode.httpRequestFailed, `HTTP request to ${where} failed: ${describeCause(err)}`);
  const responseFailed = (err: unknown): EngineError =>
    err instanceof EngineError
      ? err
      : new EngineError(ErrorCode.httpResponseFailed, `HTTP response from ${where} failed: ${describeCause(err)}`);

  return new Promise<RawResponse>((resolve, reject) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    let req: ClientRequest | undefined;

    const timeoutMs = Math.min(Math.max(0, call.timeoutMs), MAX_TIMER_MS);
    const timer = setTimeout(() => {
      const err = new Error(`timed out after ${timeoutMs} ms`);
      if (response !== undefined) response.destroy(err);
      else req?.destroy(err);
    }, timeoutMs);

    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };

    const options: RequestOptions = {
      method: call.method,
      protocol: call.url.protocol,
      // WHATWG keeps IPv6 literals bracketed; sockets want them bare.
      hostname: call.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: call.url.port === '' ? undefined : Number(call.url.port),
      path: `${call.url.pathname}${call.url.search}`,
      headers: call.headers,
      ...(call.url.username !== '' || call.url.password !== ''
        ? { auth: `${decodeURIComponent(call.url.username)}:${decodeURIComponent(call.url.password)}` }
        : {}),
      ...(call.guard !== undefined
        ? { lookup: call.guard, agent: guardedAgents[call.url.protocol as 'http:' | 'https:'] }
        : {}),
    };

    try {
      req = call.url.protocol === 'https:' ? httpsRequest(options) : httpRequest(options);
    } catch (err) {
      // Invalid header names or values (e.g. a newline in a custom header) throw synchronously.
      settle(() => reject(requestFailed(err)));
      return;
    }

    req.on('error', (err) => {
      settle(() => reject(response === undefined ? requestFailed(err) : responseFailed(err)));
    });
    req.on('response', (res) => {
      response = res;
      readBody(res, call.maxResponseBytes, call.responseBudget, where).then(
        (body) => settle(() => resolve({ status: res.statusCode ?? 0, body })),
        (err: unknown) => settle(() => reject(responseFailed(err))),
      );
    });
    // A 101 is a 1xx: success without a result; the upgraded socket is of no use to us.
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      settle(() => resolve({ status: 101, body: Buffer.alloc(0) }));
    });
    req.end(call.body);
  });
}
