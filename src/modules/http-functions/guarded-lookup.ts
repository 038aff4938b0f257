import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isBlockedAddress } from './blocked-addresses';
import { UrlProblem, urlValidationError } from './url-validation';

/**
 * A `lookup` for `http.request` that refuses to connect when any address the host name resolves
 * to is blocked. Judging the very addresses the socket then connects to (instead of resolving
 * once during validation and letting the HTTP client resolve again) defeats DNS rebinding.
 * Node does not call `lookup` for IP literals: validateUrl judges those.
 * The errors are EngineErrors, so the caller can tell them from connection failures.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { all: true, family: options.family, hints: options.hints }, (err, addresses) => {
    if (err) {
      callback(urlValidationError(UrlProblem.dnsFailed, `host ${hostname}: ${err.code ?? err.message}`), '');
      return;
    }
    if (addresses.length === 0) {
      callback(urlValidationError(UrlProblem.dnsFailed, `host ${hostname} has no addresses`), '');
      return;
    }
    const bad = addresses.find((a) => isBlockedAddress(a.address));
    if (bad !== undefined) {
      callback(
        urlValidationError(
          UrlProblem.privateIp,
          `host ${hostname} resolves to ${bad.address} (security.block_private_ips is on)`,
        ),
        '',
      );
      return;
    }
    if (options.all === true) {
      callback(null, addresses);
    } else {
      const first: LookupAddress = addresses[0]!;
      callback(null, first.address, first.family);
    }
  });
};
