import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isBlockedAddress } from './blocked-addresses';
import { UrlProblem, urlValidationError } from './url-validation';

/** Resolves a host name to all its addresses: `dns.lookup` with `all: true`, or a stand-in. */
export type Resolver = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** The system resolver (getaddrinfo, so /etc/hosts and the search domains apply). */
export const systemResolver: Resolver = (hostname, options, callback) => dnsLookup(hostname, options, callback);

/**
 * A `lookup` for `http.request` that refuses to connect when any address the host name resolves
 * to is blocked. Judging the very addresses the socket then connects to (instead of resolving
 * once during validation and letting the HTTP client resolve again) defeats DNS rebinding: there
 * is one resolution per connection, and it is the one judged. Node does not call `lookup` for IP
 * literals: validateUrl judges those. The errors are EngineErrors, so the caller can tell them
 * from connection failures.
 */
export function guardedLookupVia(resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { all: true, family: options.family, hints: options.hints }, (err, addresses) => {
      if (err) {
        callback(urlValidationError(UrlProblem.dnsFailed, `host ${hostname}: ${err.code ?? err.message}`), '');
        return;
      }
      if (addresses.length === 0) {
        callback(urlValidationError(UrlProblem.dnsFailed, `host ${hostname} has no addresses`), '');
        return;
      }
      // Any blocked answer refuses the name: with several addresses Node may try each in turn.
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
        const first: LookupAddress = addresses[0];
        callback(null, first.address, first.family);
      }
    });
  };
}
