/**
 * HTTP-invoked functions (iii module `iii-http-functions`, protocol §6): functions a worker
 * registers with an `invocation` block and the engine executes by calling a URL.
 */
export {
  type HttpFunctionOptions,
  DEFAULT_HTTP_TIMEOUT_MS,
  DEFAULT_MAX_RESPONSE_BYTES,
  defaultHttpFunctionOptions,
} from './options';
export { DEFAULT_MAX_BUFFERED_RESPONSE_BYTES, ResponseBudget } from './response-budget';
export { validateRegistration } from './validate-registration';
export { invokeHttpFunction } from './invoke';
export { AUTH_SECRET_NOT_FOUND, AUTH_SECRET_RESERVED, hmacSignature } from './auth';
export { UrlProblem } from './url-validation';
export { isBlockedAddress } from './blocked-addresses';
export { matchesHostGlob, hostInAllowlist } from './host-glob';
