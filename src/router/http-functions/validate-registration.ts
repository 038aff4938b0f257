import type { HttpInvocation } from '../../protocol/messages';
import type { EngineError } from '../../protocol/errors';
import { readAuthSecret } from './auth';
import type { HttpFunctionOptions } from './options';
import { validateUrl } from './url-validation';

/**
 * The checks iii runs when a worker registers an HTTP function: the URL (§6.3, except DNS — host
 * names are judged at connect time on every call) and that the auth env var is set. Returns the
 * first problem, or undefined when the registration may proceed.
 */
export function validateRegistration(
  invocation: HttpInvocation,
  opts: Pick<HttpFunctionOptions, 'security' | 'env'>,
): EngineError | undefined {
  const url = validateUrl(invocation.url, opts.security);
  if (!(url instanceof URL)) return url;
  if (invocation.auth !== undefined) {
    const secret = readAuthSecret(invocation.auth, opts.env);
    if (typeof secret !== 'string') return secret;
  }
  return undefined;
}
