import type { HttpFunctionsSecurity } from '../../config/types';
import type { Resolver } from './guarded-lookup';
import { DEFAULT_MAX_BUFFERED_RESPONSE_BYTES, ResponseBudget } from './response-budget';

/** Largest response body the engine buffers for one call: 16 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Per-call timeout when the registration has no `timeout_ms`: 30 s, as in iii. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

export interface HttpFunctionOptions {
  /** `iii-http-functions.security`: allowlist, private-IP blocking, HTTPS requirement. */
  security: HttpFunctionsSecurity;
  /** Where `token_key` / `secret_key` / `value_key` are looked up (normally `process.env`). */
  env: NodeJS.ProcessEnv;
  /** Response bodies larger than this many bytes fail the call; default 16 MiB. */
  maxResponseBytes: number;
  /** Timeout in ms for registrations without `timeout_ms`; default 30000. */
  defaultTimeoutMs: number;
  /** Response bytes all calls together may hold while reading; one per engine, default 256 MiB. */
  responseBudget: ResponseBudget;
  /**
   * Resolves host names when `block_private_ips` is on; default the system resolver. Another
   * resolver (a DNS-over-HTTPS client, or a test playing a rebinding DNS server) plugs in here.
   */
  resolve?: Resolver;
}

export function defaultHttpFunctionOptions(
  security: HttpFunctionsSecurity,
  env: NodeJS.ProcessEnv = process.env,
): HttpFunctionOptions {
  return {
    security,
    env,
    maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
    defaultTimeoutMs: DEFAULT_HTTP_TIMEOUT_MS,
    responseBudget: new ResponseBudget(DEFAULT_MAX_BUFFERED_RESPONSE_BYTES),
  };
}
