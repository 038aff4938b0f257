import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';

/**
 * The update ops of `state::update` and `stream::update` (iii-modules.md §8.3), as the SDK's
 * `UpdateOp` union types them. A path string is one literal key (`""` is the root); merge and
 * append also take an array of literal segments.
 */
export interface SetOp {
  type: 'set';
  path: string;
  value: Json;
}
export interface MergeOp {
  type: 'merge';
  path?: string | string[];
  value: Json;
}
export interface IncrementOp {
  type: 'increment' | 'decrement';
  path: string;
  by: number;
}
export interface AppendOp {
  type: 'append';
  path?: string | string[];
  value: Json;
}
export interface RemoveOp {
  type: 'remove';
  path: string;
}
export type UpdateOp = SetOp | MergeOp | IncrementOp | AppendOp | RemoveOp;
export type PathOp = Extract<UpdateOp, { path?: unknown }>;

const OP_TYPES = ['set', 'merge', 'increment', 'decrement', 'append', 'remove'] as const;

/**
 * Reads the raw `ops` input. Anything that does not fit the op union (not an array, an unknown
 * `type`, a missing or mistyped field) throws `deserialization_error` naming the op by index;
 * the limits of §8.3 are checked later, per op, so one bad op does not sink the others.
 */
export function parseUpdateOps(ops: Json): UpdateOp[] {
  if (!Array.isArray(ops)) throw invalid(`\`ops\` must be an array of update ops, got ${kind(ops)}`);
  return ops.map((op, index) => parseOp(op, index));
}

function parseOp(raw: Json, index: number): UpdateOp {
  const at = `ops[${index}]`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid(`${at} must be an object, got ${kind(raw)}`);
  const type = raw['type'];
  if (typeof type !== 'string' || !(OP_TYPES as readonly string[]).includes(type)) {
    throw invalid(
      `${at}.type must be one of ${OP_TYPES.join(', ')}, got ${type === undefined ? 'nothing' : JSON.stringify(type)}`,
    );
  }
  const field = (name: string): Json | undefined => raw[name];
  const required = (name: string): Json => {
    const v = field(name);
    if (v === undefined) throw invalid(`${at} (${type}) is missing field \`${name}\``);
    return v;
  };
  const keyPath = (): string => {
    const v = required('path');
    if (typeof v !== 'string')
      throw invalid(`${at}.path must be a string (one first-level key, "" for the whole value), got ${kind(v)}`);
    return v;
  };
  const segmentPath = (): string | string[] | undefined => {
    const v = field('path');
    if (v === undefined || v === null || typeof v === 'string') return v ?? undefined;
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
    throw invalid(`${at}.path must be a string or an array of strings, got ${kind(v)}`);
  };
  switch (type as UpdateOp['type']) {
    case 'set':
      return { type: 'set', path: keyPath(), value: field('value') ?? null };
    case 'merge':
      return withPath({ type: 'merge', value: required('value') }, segmentPath());
    case 'increment':
    case 'decrement': {
      const path = keyPath();
      const by = required('by');
      if (typeof by !== 'number' || !Number.isSafeInteger(by)) {
        throw invalid(
          `${at}.by must be an integer from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}, got ${JSON.stringify(by)}`,
        );
      }
      return { type: type as IncrementOp['type'], path, by };
    }
    case 'append':
      return withPath({ type: 'append', value: required('value') }, segmentPath());
    case 'remove':
      return { type: 'remove', path: keyPath() };
  }
}

function withPath<T extends MergeOp | AppendOp>(op: T, path: string | string[] | undefined): T {
  if (path !== undefined) op.path = path;
  return op;
}

function invalid(detail: string): EngineError {
  return new EngineError(ErrorCode.deserializationError, `Invalid update ops: ${detail}.`);
}

function kind(value: Json | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
