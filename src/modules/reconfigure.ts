import { isDeepStrictEqual } from 'node:util';

/** Top-level keys of a module block whose values differ between `before` and `after`. */
export function changedKeys(before: object, after: object): string[] {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((key) => !isDeepStrictEqual(a[key], b[key]));
}

/** The changed keys a module cannot apply live (those not in `live`): they need a restart. */
export function needsRestart(before: object, after: object, live: readonly string[]): string[] {
  return changedKeys(before, after).filter((key) => !live.includes(key));
}
