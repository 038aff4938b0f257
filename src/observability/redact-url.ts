/**
 * A URL fit for a log line or an error message (Redis, RabbitMQ, any `scheme://user:password@host`):
 * its password replaced by `***`, the user kept; a user info without a colon (which may be a bare
 * token) becomes `***` whole. Works on text that is not a valid URL too (a typo must not leak the
 * secret): everything between `://` (or the start) and the last `@` counts as user info, so a
 * password holding `/`, `:` or `@` is hidden all the same.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at === -1) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const userinfo = url.slice(scheme.length, at);
  const colon = userinfo.indexOf(':');
  return `${scheme}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}${url.slice(at)}`;
}
