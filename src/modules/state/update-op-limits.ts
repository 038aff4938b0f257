import type { Json } from '../../protocol/messages';

/** Bounds on update-op paths and merge values (iii-modules.md §8.3); a breach fails that op only. */
export const MAX_PATH_SEGMENTS = 32;
/** Per segment, counted in UTF-8 bytes. */
export const MAX_SEGMENT_BYTES = 256;
/** Top-level keys of one merge value. */
export const MAX_MERGE_KEYS = 1024;
/** Nesting of a merge value: `{}` and `{a: 1}` are depth 1, `{a: {b: 1}}` depth 2 (arrays count too). */
export const MAX_MERGE_DEPTH = 16;
/** Keys that would reach an object's prototype in a JavaScript reader of the value. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Why one op was skipped: becomes an UpdateOpError. */
export interface Problem {
  code: string;
  message: string;
}

/** The first rule `segments` (of an op of type `op`) breaks, or undefined. */
export function pathProblem(op: string, segments: readonly string[]): Problem | undefined {
  const code = (reason: string) => `${op}.path.${reason}`;
  if (segments.length > MAX_PATH_SEGMENTS) {
    return {
      code: code('too_deep'),
      message: `Path has ${segments.length} segments; at most ${MAX_PATH_SEGMENTS} are allowed.`,
    };
  }
  for (const [i, segment] of segments.entries()) {
    if (segment === '')
      return { code: code('empty_segment'), message: `Path segment ${i} is empty; every segment must name a key.` };
    const bytes = Buffer.byteLength(segment, 'utf8');
    if (bytes > MAX_SEGMENT_BYTES) {
      return {
        code: code('segment_too_long'),
        message: `Path segment ${i} is ${bytes} bytes; at most ${MAX_SEGMENT_BYTES} are allowed.`,
      };
    }
    if (FORBIDDEN_KEYS.has(segment)) {
      return {
        code: code('proto_polluted'),
        message: `Path segment ${i} is "${segment}", which is not allowed as a key.`,
      };
    }
  }
  return undefined;
}

/** The first rule a merge `value` breaks, or undefined. */
export function valueProblem(value: Json): Problem | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      code: 'merge.value.not_an_object',
      message: `Merge value must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}.`,
    };
  }
  const keys = Object.keys(value);
  if (keys.length > MAX_MERGE_KEYS) {
    return {
      code: 'merge.value.too_many_keys',
      message: `Merge value has ${keys.length} top-level keys; at most ${MAX_MERGE_KEYS} are allowed.`,
    };
  }
  const forbidden = keys.find((key) => FORBIDDEN_KEYS.has(key));
  if (forbidden !== undefined) {
    return {
      code: 'merge.value.proto_polluted',
      message: `Merge value has the top-level key "${forbidden}", which is not allowed.`,
    };
  }
  if (exceedsDepth(value, MAX_MERGE_DEPTH)) {
    return { code: 'merge.value.too_deep', message: `Merge value nests deeper than ${MAX_MERGE_DEPTH} levels.` };
  }
  return undefined;
}

/** True when `value` nests more than `limit` levels; stops descending once the limit is passed. */
function exceedsDepth(value: Json, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  const children = Array.isArray(value) ? value : Object.values(value);
  return children.some((child) => exceedsDepth(child, limit - 1));
}
