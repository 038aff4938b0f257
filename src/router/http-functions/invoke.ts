import type { HttpInvocation, Json } from '../../protocol/messages';
import { guardedLookupVia, systemResolver } from './guarded-lookup';
import { buildRequestHeaders } from './request-headers';
import type { HttpFunctionOptions } from './options';
import { mapResponse } from './response-mapping';
import { sendRequest } from './send-request';
import { displayUrl, validateUrl } from './url-validation';

/**
 * Executes an HTTP-invoked function (iii §6.2): one request carrying `data` as JSON, mapped back
 * to a result. Resolves `{}` for "success without a result"; throws an EngineError otherwise.
 */
export async function invokeHttpFunction(
  functionId: string,
  invocation: HttpInvocation,
  data: Json,
  opts: HttpFunctionOptions,
): Promise<{ result?: Json }> {
  // Re-validated on every call: the security config may be stricter than at registration.
  const url = validateUrl(invocation.url, opts.security);
  if (!(url instanceof URL)) throw url;

  // JSON.stringify(undefined) is undefined; a call without data sends `null`, like serde would.
  const body = Buffer.from(JSON.stringify(data) ?? 'null', 'utf8');
  const timestampSeconds = Math.floor(Date.now() / 1000);
  const headers = buildRequestHeaders({ functionId, invocation, url, body, timestampSeconds, env: opts.env });
  if (!Array.isArray(headers)) throw headers;

  const response = await sendRequest({
    url,
    method: invocation.method,
    headers,
    body,
    timeoutMs: invocation.timeout_ms ?? opts.defaultTimeoutMs,
    maxResponseBytes: opts.maxResponseBytes,
    responseBudget: opts.responseBudget,
    guard: opts.security.block_private_ips ? guardedLookupVia(opts.resolve ?? systemResolver) : undefined,
  });
  return mapResponse(response.status, response.body, displayUrl(url));
}
