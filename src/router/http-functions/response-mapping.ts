import { STATUS_CODES } from 'node:http';
import type { Json } from '../../protocol/messages';
import { EngineError, ErrorCode } from '../../protocol/errors';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as JSON, or undefined when it is not UTF-8 JSON (`null` is a JSON value). */
function parseJson(body: Buffer): { value: Json } | undefined {
  try {
    return { value: JSON.parse(strictUtf8.decode(body)) as Json };
  } catch {
    return undefined;
  }
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Turns an HTTP response into the call's outcome, per iii §6.2:
 * 2xx → the JSON body (empty → no result; not JSON → invalid_response); 1xx/3xx → the JSON body
 * if there is one; ≥ 400 → the body's `{error: {code, message}}` or `HTTP <status> <reason>`.
 */
export function mapResponse(status: number, body: Buffer, where: string): { result?: Json } {
  if (status >= 400) throw errorFromResponse(status, body);
  if (status >= 200 && status < 300) {
    if (body.length === 0) return {};
    const parsed = parseJson(body);
    if (parsed === undefined) {
      throw new EngineError(
        ErrorCode.invalidResponse,
        `HTTP ${status} response from ${where} is not JSON (${body.length} bytes)`,
      );
    }
    return { result: parsed.value };
  }
  const parsed = body.length === 0 ? undefined : parseJson(body);
  return parsed === undefined ? {} : { result: parsed.value };
}

function errorFromResponse(status: number, body: Buffer): EngineError {
  const value = body.length === 0 ? undefined : parseJson(body)?.value;
  const error = isObject(value) ? value['error'] : undefined;
  if (isObject(error)) {
    const code = typeof error['code'] === 'string' ? error['code'] : ErrorCode.httpError;
    const message = typeof error['message'] === 'string' ? error['message'] : 'HTTP request failed';
    return new EngineError(code, message);
  }
  const reason = STATUS_CODES[status];
  return new EngineError(ErrorCode.httpError, reason === undefined ? `HTTP ${status}` : `HTTP ${status} ${reason}`);
}
