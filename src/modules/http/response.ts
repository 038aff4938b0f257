import { validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Json } from '../../protocol/messages';

/** Final statuses a handler may choose; anything else falls back to 200 (as the original). */
export function validStatus(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 200 && value <= 599 ? value : undefined;
}

/** Adds `name: value` to `headers` if both are valid HTTP; invalid ones are skipped (as the original). */
export function addHeader(headers: OutgoingHttpHeaders, name: string, value: unknown): void {
  if (typeof value !== 'string') return;
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  } catch {
    return;
  }
  headers[name.toLowerCase()] = value;
}

/** Handler headers: an object `{Name: value}` or an array of `"Name: value"` strings. */
export function readHeaders(value: Json | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  addHeaders(headers, value);
  return headers;
}

/** Adds handler headers (as `readHeaders` reads them) to `headers`, over what it holds. */
function addHeaders(headers: OutgoingHttpHeaders, value: Json | undefined): void {
  if (Array.isArray(value)) {
    for (const line of value) {
      if (typeof line !== 'string') continue;
      const colon = line.indexOf(':');
      if (colon > 0) addHeader(headers, line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [name, v] of Object.entries(value)) addHeader(headers, name, v);
  }
}

/**
 * Sends a handler's buffered result `{status_code?, headers?, body?}` (§5.5): with a content-type
 * set by the handler a string body goes out raw, a null body as nothing and any other body as
 * JSON text; without one the body is JSON-serialized and typed `application/json`.
 */
export function sendBuffered(res: ServerResponse, result: Json, extraHeaders: Readonly<OutgoingHttpHeaders>): void {
  const fields = result !== null && typeof result === 'object' && !Array.isArray(result) ? result : {};
  const status = validStatus(fields.status_code) ?? 200;
  const headers: OutgoingHttpHeaders = { ...extraHeaders };
  addHeaders(headers, fields.headers);
  const body: Json = fields.body === undefined ? {} : fields.body;
  let payload: string | Buffer;
  if (headers['content-type'] !== undefined) {
    payload = typeof body === 'string' ? body : body === null ? '' : JSON.stringify(body);
  } else {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  headers['content-length'] = Buffer.byteLength(payload);
  res.writeHead(status, headers);
  res.end(payload);
}

/** A middleware's `respond` result: always JSON, with the headers it gave (object form only). */
export function sendMiddlewareResponse(
  res: ServerResponse,
  response: Json | undefined,
  extraHeaders: Readonly<OutgoingHttpHeaders>,
): void {
  const fields = response !== null && typeof response === 'object' && !Array.isArray(response) ? response : {};
  const headers: OutgoingHttpHeaders = { ...extraHeaders, 'content-type': 'application/json' };
  if (fields.headers !== null && typeof fields.headers === 'object' && !Array.isArray(fields.headers))
    Object.assign(headers, readHeaders(fields.headers));
  const payload = JSON.stringify(fields.body === undefined ? null : fields.body);
  headers['content-length'] = Buffer.byteLength(payload);
  res.writeHead(validStatus(fields.status_code) ?? 200, headers);
  res.end(payload);
}
