/**
 * iii-sdk 0.22 builds a data channel's URL by appending `/ws/channels/<id>?key=..&dir=..` to the
 * engine URL as a string. When that URL carries a query (`ws://host:49134?token=T`, the way to
 * present the worker token that also covers `/otel`), the result is
 * `/?token=T/ws/channels/<id>?key=..&dir=..`: the channel path lands inside the query. This
 * returns the channel part of such a request URL (`/ws/channels/<id>?key=..&dir=..`), or
 * undefined for any other URL, so the listener can serve it as the channel request it is.
 */
const CHANNEL_PATH = '/ws/channels/';

export function sdkChannelUrl(url: string): string | undefined {
  const query = url.indexOf('?');
  if (query === -1) return undefined;
  const path = url.slice(0, query);
  if (path !== '/' && path !== '') return undefined;
  const at = url.indexOf(CHANNEL_PATH, query);
  return at === -1 ? undefined : url.slice(at);
}
