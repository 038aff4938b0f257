import type { HttpFunctionsSecurity } from '../../config/types';
import { EngineError, ErrorCode } from '../../protocol/errors';
import { isBlockedAddress, literalIp } from './blocked-addresses';
import { hostInAllowlist } from './host-glob';

/** The reasons of iii §6.3, in the order the checks run; each message starts with one. */
export const UrlProblem = {
  invalid: 'Invalid URL',
  httpsRequired: 'HTTPS is required',
  notAllowlisted: 'URL not in allowlist',
  privateIp: 'Private IP blocked',
  dnsFailed: 'DNS lookup failed',
} as const;

export function urlValidationError(problem: string, detail: string): EngineError {
  return new EngineError(ErrorCode.urlValidationFailed, `${problem}: ${detail}`);
}

/** The URL without query, fragment or credentials, safe to put in messages and logs. */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * Checks of iii §6.3 that need no network: the URL parses (and is http/https), HTTPS when
 * required, the host is allowlisted, and a literal IP host is not private. Host names are
 * resolved and judged later, at connect time (see guarded-lookup.ts).
 */
export function validateUrl(raw: string, security: HttpFunctionsSecurity): URL | EngineError {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return urlValidationError(UrlProblem.invalid, `${JSON.stringify(raw.slice(0, 200))} does not parse`);
  }
  // Anything else fails every call at send time in iii; refusing it up front is clearer.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return urlValidationError(
      UrlProblem.invalid,
      `${displayUrl(url)} uses ${url.protocol}, only http: and https: are supported`,
    );
  }
  if (url.hostname === '') {
    return urlValidationError(UrlProblem.invalid, `${displayUrl(url)} has no host`);
  }
  if (security.require_https && url.protocol !== 'https:') {
    return urlValidationError(
      UrlProblem.httpsRequired,
      `${displayUrl(url)} uses ${url.protocol} (security.require_https is on)`,
    );
  }
  if (!hostInAllowlist(url.hostname, security.url_allowlist)) {
    return urlValidationError(
      UrlProblem.notAllowlisted,
      `host ${url.hostname} of ${displayUrl(url)} matches no entry of security.url_allowlist`,
    );
  }
  const ip = literalIp(url.hostname);
  if (security.block_private_ips && ip !== undefined && isBlockedAddress(ip)) {
    return urlValidationError(
      UrlProblem.privateIp,
      `${displayUrl(url)} targets ${ip} (security.block_private_ips is on)`,
    );
  }
  return url;
}
