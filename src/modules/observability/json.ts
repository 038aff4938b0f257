import type { Json } from '../../protocol/messages';

/** Our record interfaces hold only JSON values but have no index signature; this says so once. */
export function asJson(value: object): Json {
  return value as unknown as Json;
}

/** Now, in unix nanoseconds (microsecond resolution). */
export function nowUnixNano(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) * 1000;
}
