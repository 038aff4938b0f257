import type { Json } from '../../protocol/messages';
import {
  parseUpdateOps,
  type AppendOp,
  type IncrementOp,
  type MergeOp,
  type PathOp,
  type RemoveOp,
  type SetOp,
  type UpdateOp,
} from './update-op-types';
import { pathProblem, valueProblem, type Problem } from './update-op-limits';

export type { UpdateOp } from './update-op-types';
export { parseUpdateOps } from './update-op-types';

/** One op that could not be applied; the others still are (iii-modules.md §8.3). */
export interface UpdateOpError {
  op_index: number;
  code: string;
  message: string;
  doc_url: string;
}

export const UPDATE_OP_DOC_URL = 'https://iii.dev/docs/workers/iii-state#error-codes';

type JsonObject = { [key: string]: Json };

/**
 * Applies `ops` (the raw `ops` input; validated here) in order to a copy of `current`
 * (undefined = missing). An op that fails adds an entry to `errors` and is skipped; the result
 * holds every op that succeeded. A value still missing after all ops becomes `{}`. Op values
 * are moved into the result, not copied: pass ops fresh from the wire, do not reuse them.
 *
 * Throws EngineError `deserialization_error` when `ops` is not an array of op objects with a
 * known `type` and the fields that type needs (the original fails deserialization there too).
 */
export function applyUpdateOps(current: Json | undefined, ops: Json): { value: Json; errors: UpdateOpError[] } {
  const parsed = parseUpdateOps(ops);
  let working: Json | undefined = current === undefined ? undefined : structuredClone(current);
  const errors: UpdateOpError[] = [];
  parsed.forEach((op, index) => {
    const outcome = applyOne(working, op);
    if ('error' in outcome)
      errors.push({
        op_index: index,
        code: outcome.error.code,
        message: outcome.error.message,
        doc_url: UPDATE_OP_DOC_URL,
      });
    else working = outcome.value;
  });
  return { value: working === undefined ? {} : working, errors };
}

type Outcome = { value: Json | undefined } | { error: Problem };

function applyOne(working: Json | undefined, op: UpdateOp): Outcome {
  const pathError = pathProblem(op.type, segmentsOf(op));
  if (pathError) return { error: pathError };
  switch (op.type) {
    case 'set':
      return applySet(working, op);
    case 'merge':
      return applyMerge(working, op);
    case 'increment':
    case 'decrement':
      return applyIncrement(working, op);
    case 'append':
      return applyAppend(working, op);
    case 'remove':
      return applyRemove(working, op);
  }
}

/** The literal path segments of an op; `[]` is the root. */
function segmentsOf(op: UpdateOp): string[] {
  const path = (op as Partial<PathOp>).path;
  if (path === undefined || path === '') return [];
  return typeof path === 'string' ? [path] : path;
}

/** A missing or null root acts as an empty object for ops that address a key. */
function rootObject(working: Json | undefined): JsonObject | undefined {
  if (working === undefined || working === null) return {};
  return isObject(working) ? working : undefined;
}

function applySet(working: Json | undefined, op: SetOp): Outcome {
  if (op.path === '') return { value: op.value };
  const root = rootObject(working);
  if (!root) return { error: targetNotObject('set', working) };
  root[op.path] = op.value;
  return { value: root };
}

function applyMerge(working: Json | undefined, op: MergeOp): Outcome {
  const valueError = valueProblem(op.value);
  if (valueError) return { error: valueError };
  const value = op.value as JsonObject;
  const root = rootObject(working);
  // Ours: the original silently skipped a merge into a non-object root; we say so.
  if (!root) return { error: targetNotObject('merge', working) };
  const target = descend(root, segmentsOf(op));
  Object.assign(target, value);
  return { value: root };
}

function applyIncrement(working: Json | undefined, op: IncrementOp): Outcome {
  const delta = op.type === 'decrement' ? -op.by : op.by;
  if (op.path === '') {
    const next = add(op.type, working, delta);
    return 'error' in next ? next : { value: next.value };
  }
  const root = rootObject(working);
  if (!root) return { error: targetNotObject(op.type, working) };
  const next = add(op.type, root[op.path], delta);
  if ('error' in next) return next;
  root[op.path] = next.value;
  return { value: root };
}

/** `current + delta`; a missing or null operand counts as 0. */
function add(
  type: IncrementOp['type'],
  current: Json | undefined,
  delta: number,
): { value: number } | { error: Problem } {
  if (current === undefined || current === null) return { value: delta };
  if (typeof current !== 'number')
    return {
      error: {
        code: `${type}.not_number`,
        message: `Cannot ${type}: the target holds ${describe(current)}, not a number.`,
      },
    };
  const sum = current + delta;
  // Integers stay exact only up to 2^53 - 1; the original reports i64 overflow the same way.
  if (Number.isInteger(current) && !Number.isSafeInteger(sum)) {
    return {
      error: {
        code: `${type}.not_number`,
        message: `Cannot ${type}: ${current} ${delta < 0 ? '-' : '+'} ${Math.abs(delta)} leaves the exact integer range (±${Number.MAX_SAFE_INTEGER}).`,
      },
    };
  }
  if (!Number.isFinite(sum))
    return { error: { code: `${type}.not_number`, message: `Cannot ${type}: the result is not a finite number.` } };
  return { value: sum };
}

function applyAppend(working: Json | undefined, op: AppendOp): Outcome {
  const segments = segmentsOf(op);
  if (segments.length === 0) {
    const next = appendTo(working, op.value, true);
    return 'error' in next ? next : { value: next.value };
  }
  const root = rootObject(working);
  if (!root) return { error: targetNotObject('append', working) };
  const parent = descend(root, segments.slice(0, -1));
  const key = segments[segments.length - 1];
  // A single first-level key keeps the root rule (a string starts a string); deeper leaves are always arrays.
  const next = appendTo(parent[key], op.value, segments.length === 1);
  if ('error' in next) return next;
  parent[key] = next.value;
  return { value: root };
}

/** Push onto an array, concatenate strings, or start a new target from `value`. */
function appendTo(
  target: Json | undefined,
  value: Json,
  stringStartsString: boolean,
): { value: Json } | { error: Problem } {
  if (target === undefined || target === null)
    return { value: stringStartsString && typeof value === 'string' ? value : [value] };
  if (Array.isArray(target)) {
    target.push(value); // the working copy is ours to change
    return { value: target };
  }
  if (typeof target === 'string' && typeof value === 'string') return { value: target + value };
  return {
    error: {
      code: 'append.type_mismatch',
      message: `Cannot append ${describe(value)} to ${describe(target)}: append needs an array, or a string and a string value.`,
    },
  };
}

function applyRemove(working: Json | undefined, op: RemoveOp): Outcome {
  if (op.path === '') return { value: null };
  if (isObject(working)) delete working[op.path];
  return { value: working };
}

/**
 * Walks `segments` from `root` and returns the object at the end. Missing or non-object steps
 * (arrays and scalars included) are replaced by `{}`, so a stray value never blocks the path.
 */
function descend(root: JsonObject, segments: string[]): JsonObject {
  let node = root;
  for (const segment of segments) {
    const existing = node[segment];
    const next = isObject(existing) ? existing : {};
    node[segment] = next;
    node = next;
  }
  return node;
}

function targetNotObject(type: string, working: Json | undefined): Problem {
  return {
    code: `${type}.target_not_object`,
    message: `Cannot ${type} a field: the stored value is ${describe(working)}, not an object.`,
  };
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: Json | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
