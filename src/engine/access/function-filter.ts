import { isDeepStrictEqual } from 'node:util';
import { DEFAULT_NAMESPACE, type FunctionFilter } from '../../config/types';
import type { Json } from '../../protocol/messages';

/**
 * The `rbac.expose_functions` filters (iii-modules.md §4.3). A string filter is a wildcard
 * pattern written `match("pattern")` or `match('pattern')`: `*` matches any run of characters,
 * the pattern is anchored at both ends, `*` alone matches every id. A bare string (no `match(...)`)
 * is taken as the same pattern. `{metadata: {key: value}}` matches a function whose registration
 * metadata has every key, each equal as JSON, or matching a `match(...)` pattern for a string.
 * `{match: "pattern", namespace: "ns"}` (iii v0.23) matches a function of namespace `ns` whose id
 * matches the pattern (bare or `match(...)`); without `namespace`, any namespace.
 * Filters are OR-ed by the caller.
 */

const MATCH_FORM = /^match\((?:"(.*)"|'(.*)')\)$/s;

/** The pattern inside `match("...")` / `match('...')`, or undefined for any other string. */
export function matchPattern(text: string): string | undefined {
  const found = MATCH_FORM.exec(text.trim());
  if (!found) return undefined;
  return found[1] ?? found[2];
}

/** Whether `value` matches the anchored wildcard `pattern` (`*` = any run, possibly empty). */
export function wildcardMatches(pattern: string, value: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === value;
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  // Greedy left-to-right search of the middle parts between the fixed head and tail.
  let at = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i];
    const found = value.indexOf(part, at);
    if (found === -1 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** What a filter is tested against: a function id and its registration metadata. */
export interface FilterTarget {
  id: string;
  metadata?: Json;
  /** The function's namespace (default `DEFAULT_NAMESPACE`). */
  namespace?: string;
}

export function filterMatches(filter: FunctionFilter, target: FilterTarget): boolean {
  if (typeof filter === 'string') return wildcardMatches(matchPattern(filter) ?? filter, target.id);
  if ('match' in filter) {
    if (filter.namespace !== undefined && filter.namespace !== (target.namespace ?? DEFAULT_NAMESPACE)) return false;
    return wildcardMatches(matchPattern(filter.match) ?? filter.match, target.id);
  }
  const metadata = target.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return false;
  return Object.entries(filter.metadata).every(
    ([key, expected]) => key in metadata && valueMatches(expected, metadata[key]),
  );
}

function valueMatches(expected: unknown, actual: Json): boolean {
  if (typeof expected === 'string') {
    const pattern = matchPattern(expected);
    if (pattern !== undefined) return typeof actual === 'string' && wildcardMatches(pattern, actual);
  }
  return isDeepStrictEqual(expected, actual);
}

export function anyFilterMatches(filters: readonly FunctionFilter[], target: FilterTarget): boolean {
  return filters.some((filter) => filterMatches(filter, target));
}
