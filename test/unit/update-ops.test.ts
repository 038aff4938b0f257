import type { Json } from '../../src/protocol/messages';
import { EngineError } from '../../src/protocol/errors';
import { applyUpdateOps, UPDATE_OP_DOC_URL, type UpdateOpError } from '../../src/modules/state/update-ops';
import {
  MAX_MERGE_DEPTH,
  MAX_MERGE_KEYS,
  MAX_PATH_SEGMENTS,
  MAX_SEGMENT_BYTES,
} from '../../src/modules/state/update-op-limits';

/** The update ops of state::update / stream::update (iii-modules.md §8.3), op by op. */

function apply(current: Json | undefined, ...ops: Json[]): { value: Json; errors: UpdateOpError[] } {
  return applyUpdateOps(current, ops);
}

/** The value after ops that must all succeed. */
function value(current: Json | undefined, ...ops: Json[]): Json {
  const result = apply(current, ...ops);
  expect(result.errors).toEqual([]);
  return result.value;
}

/** The codes of the failed ops. */
function codes(current: Json | undefined, ...ops: Json[]): string[] {
  return apply(current, ...ops).errors.map((e) => e.code);
}

function nested(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = { d: v };
  return v;
}

describe('applyUpdateOps: general rules', () => {
  test('a missing value with no ops becomes {}', () => {
    expect(value(undefined)).toEqual({});
  });

  test('ops apply in order to a copy: the input is not mutated', () => {
    const current = { a: { b: 1 } };
    expect(
      value(current, { type: 'merge', path: 'a', value: { c: 2 } }, { type: 'increment', path: 'n', by: 1 }),
    ).toEqual({ a: { b: 1, c: 2 }, n: 1 });
    expect(current).toEqual({ a: { b: 1 } });
  });

  test('a failed op is skipped and reported with its index; the others still apply', () => {
    const result = apply(
      { s: 'x' },
      { type: 'set', path: 'a', value: 1 },
      { type: 'increment', path: 's', by: 1 },
      { type: 'set', path: 'b', value: 2 },
    );
    expect(result.value).toEqual({ s: 'x', a: 1, b: 2 });
    expect(result.errors).toEqual([
      {
        op_index: 1,
        code: 'increment.not_number',
        message: expect.stringContaining('not a number'),
        doc_url: UPDATE_OP_DOC_URL,
      },
    ]);
    expect(UPDATE_OP_DOC_URL).toBe('https://iii.dev/docs/workers/iii-state#error-codes');
  });
});

describe('applyUpdateOps: set', () => {
  test('sets a first-level key, creating the object when missing', () => {
    expect(value(undefined, { type: 'set', path: 'a', value: 1 })).toEqual({ a: 1 });
    expect(value({ a: 1, b: 2 }, { type: 'set', path: 'a', value: [3] })).toEqual({ a: [3], b: 2 });
  });

  test('a dotted path is one literal key', () => {
    expect(value({}, { type: 'set', path: 'a.b', value: 1 })).toEqual({ 'a.b': 1 });
  });

  test('"" replaces the whole value; an omitted value means null', () => {
    expect(value({ a: 1 }, { type: 'set', path: '', value: 'x' })).toBe('x');
    expect(value({ a: 1 }, { type: 'set', path: '' })).toBeNull();
    expect(value({}, { type: 'set', path: 'a' })).toEqual({ a: null });
  });

  test('a non-object value -> set.target_not_object', () => {
    expect(codes(5, { type: 'set', path: 'a', value: 1 })).toEqual(['set.target_not_object']);
    expect(apply([1], { type: 'set', path: 'a', value: 1 }).value).toEqual([1]);
  });
});

describe('applyUpdateOps: merge', () => {
  test('no path, "" or [] merges shallowly at the root', () => {
    for (const path of [undefined, '', []]) {
      const op: Record<string, Json> = { type: 'merge', value: { b: { y: 2 }, c: 3 } };
      if (path !== undefined) op['path'] = path;
      expect(value({ a: 1, b: { x: 1 } }, op)).toEqual({ a: 1, b: { y: 2 }, c: 3 });
    }
  });

  test('merges into a missing value', () => {
    expect(value(undefined, { type: 'merge', value: { a: 1 } })).toEqual({ a: 1 });
  });

  test('a string path is one key; an array path is literal segments', () => {
    expect(value({ s: { a: 1 } }, { type: 'merge', path: 's', value: { b: 2 } })).toEqual({ s: { a: 1, b: 2 } });
    expect(value({}, { type: 'merge', path: ['x.y', 'z'], value: { b: 2 } })).toEqual({ 'x.y': { z: { b: 2 } } });
  });

  test('missing and non-object intermediates (arrays too) and targets become {}', () => {
    expect(
      value(
        { a: 5, b: [1] },
        { type: 'merge', path: ['a', 'k'], value: { v: 1 } },
        { type: 'merge', path: ['b'], value: { w: 1 } },
      ),
    ).toEqual({
      a: { k: { v: 1 } },
      b: { w: 1 },
    });
  });

  test('a non-object root -> merge.target_not_object (ours: the original did nothing silently)', () => {
    const result = apply('text', { type: 'merge', value: { a: 1 } });
    expect(result.value).toBe('text');
    expect(result.errors.map((e) => e.code)).toEqual(['merge.target_not_object']);
  });

  test('value rules: not_an_object, too_many_keys, proto_polluted, too_deep', () => {
    expect(
      codes({}, { type: 'merge', value: [1] }, { type: 'merge', value: 'x' }, { type: 'merge', value: null }),
    ).toEqual(['merge.value.not_an_object', 'merge.value.not_an_object', 'merge.value.not_an_object']);
    const keys = (n: number): Json => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    expect(codes({}, { type: 'merge', value: keys(MAX_MERGE_KEYS) })).toEqual([]);
    expect(codes({}, { type: 'merge', value: keys(MAX_MERGE_KEYS + 1) })).toEqual(['merge.value.too_many_keys']);
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      expect(codes({}, { type: 'merge', value: JSON.parse(`{"${key}": {"polluted": true}}`) })).toEqual([
        'merge.value.proto_polluted',
      ]);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(codes({}, { type: 'merge', value: nested(MAX_MERGE_DEPTH) })).toEqual([]);
    expect(codes({}, { type: 'merge', value: nested(MAX_MERGE_DEPTH + 1) })).toEqual(['merge.value.too_deep']);
  });

  test('path rules: too_deep, segment_too_long, empty_segment, proto_polluted', () => {
    const segments = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);
    expect(codes({}, { type: 'merge', path: segments(MAX_PATH_SEGMENTS), value: {} })).toEqual([]);
    expect(codes({}, { type: 'merge', path: segments(MAX_PATH_SEGMENTS + 1), value: {} })).toEqual([
      'merge.path.too_deep',
    ]);
    expect(codes({}, { type: 'merge', path: ['x'.repeat(MAX_SEGMENT_BYTES)], value: {} })).toEqual([]);
    expect(codes({}, { type: 'merge', path: ['x'.repeat(MAX_SEGMENT_BYTES + 1)], value: {} })).toEqual([
      'merge.path.segment_too_long',
    ]);
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    expect(codes({}, { type: 'merge', path: 'é'.repeat(129), value: {} })).toEqual(['merge.path.segment_too_long']);
    expect(codes({}, { type: 'merge', path: ['a', ''], value: {} })).toEqual(['merge.path.empty_segment']);
    expect(
      codes(
        {},
        { type: 'merge', path: ['a', '__proto__'], value: {} },
        { type: 'merge', path: 'constructor', value: {} },
      ),
    ).toEqual(['merge.path.proto_polluted', 'merge.path.proto_polluted']);
  });
});

describe('applyUpdateOps: increment and decrement', () => {
  test('adds to a number; a missing field or root starts from 0', () => {
    expect(value({ n: 2 }, { type: 'increment', path: 'n', by: 3 }, { type: 'decrement', path: 'm', by: 4 })).toEqual({
      n: 5,
      m: -4,
    });
    expect(value(undefined, { type: 'increment', path: '', by: 7 })).toBe(7);
    expect(value(undefined, { type: 'decrement', path: '', by: 7 })).toBe(-7);
    expect(value(10, { type: 'decrement', path: '', by: 3 })).toBe(7);
  });

  test('floats in storage use float arithmetic', () => {
    expect(value({ f: 1.5 }, { type: 'increment', path: 'f', by: 2 })).toEqual({ f: 3.5 });
  });

  test('a non-number -> <op>.not_number', () => {
    expect(codes({ s: 'x' }, { type: 'increment', path: 's', by: 1 }, { type: 'decrement', path: 's', by: 1 })).toEqual(
      ['increment.not_number', 'decrement.not_number'],
    );
    expect(codes({ a: 1 }, { type: 'increment', path: '', by: 1 })).toEqual(['increment.not_number']);
  });

  test('leaving the exact integer range -> <op>.not_number naming the bound', () => {
    const result = apply({ n: Number.MAX_SAFE_INTEGER }, { type: 'increment', path: 'n', by: 1 });
    expect(result.errors[0]).toMatchObject({
      code: 'increment.not_number',
      message: expect.stringContaining(String(Number.MAX_SAFE_INTEGER)),
    });
    expect(result.value).toEqual({ n: Number.MAX_SAFE_INTEGER });
    expect(codes({ n: -Number.MAX_SAFE_INTEGER }, { type: 'decrement', path: 'n', by: 1 })).toEqual([
      'decrement.not_number',
    ]);
  });

  test('a non-object root with a path -> <op>.target_not_object', () => {
    expect(codes([1], { type: 'increment', path: 'n', by: 1 }, { type: 'decrement', path: 'n', by: 1 })).toEqual([
      'increment.target_not_object',
      'decrement.target_not_object',
    ]);
  });

  test('path rules use the op name', () => {
    expect(
      codes(
        {},
        { type: 'increment', path: '__proto__', by: 1 },
        { type: 'decrement', path: 'y'.repeat(MAX_SEGMENT_BYTES + 1), by: 1 },
      ),
    ).toEqual(['increment.path.proto_polluted', 'decrement.path.segment_too_long']);
  });
});

describe('applyUpdateOps: append', () => {
  test('at the root of a missing value: a string stays a string, anything else starts an array', () => {
    expect(value(undefined, { type: 'append', value: 'ab' })).toBe('ab');
    expect(value(undefined, { type: 'append', value: 1 })).toEqual([1]);
    expect(value(undefined, { type: 'append', path: [], value: { x: 1 } })).toEqual([{ x: 1 }]);
  });

  test('pushes onto an array and concatenates strings', () => {
    expect(value([1], { type: 'append', value: 2 })).toEqual([1, 2]);
    expect(value('ab', { type: 'append', value: 'cd' })).toBe('abcd');
    expect(
      value({ l: ['a'], s: 'x' }, { type: 'append', path: 'l', value: 'b' }, { type: 'append', path: 's', value: 'y' }),
    ).toEqual({ l: ['a', 'b'], s: 'xy' });
  });

  test('a single key follows the root rules; a nested missing leaf is always an array', () => {
    expect(value({}, { type: 'append', path: 's', value: 'x' }, { type: 'append', path: 'n', value: 1 })).toEqual({
      s: 'x',
      n: [1],
    });
    expect(value({ a: 3 }, { type: 'append', path: ['a', 'b', 'c'], value: 'x' })).toEqual({ a: { b: { c: ['x'] } } });
    expect(value({ a: { b: 'x' } }, { type: 'append', path: ['a', 'b'], value: 'y' })).toEqual({ a: { b: 'xy' } });
  });

  test('other combinations -> append.type_mismatch', () => {
    expect(codes({ o: {} }, { type: 'append', path: 'o', value: 1 })).toEqual(['append.type_mismatch']);
    expect(codes('ab', { type: 'append', value: 1 })).toEqual(['append.type_mismatch']);
    expect(codes(5, { type: 'append', value: 1 })).toEqual(['append.type_mismatch']);
    expect(codes({ a: 5 }, { type: 'append', path: ['a'], value: 1 })).toEqual(['append.type_mismatch']);
  });

  test('a non-object root with a path -> append.target_not_object', () => {
    expect(codes([1], { type: 'append', path: 'a', value: 1 }, { type: 'append', path: ['a', 'b'], value: 1 })).toEqual(
      ['append.target_not_object', 'append.target_not_object'],
    );
  });

  test('path rules', () => {
    expect(
      codes({}, { type: 'append', path: ['a', ''], value: 1 }, { type: 'append', path: ['prototype'], value: 1 }),
    ).toEqual(['append.path.empty_segment', 'append.path.proto_polluted']);
    expect(
      codes({}, { type: 'append', path: Array.from({ length: MAX_PATH_SEGMENTS + 1 }, () => 'a'), value: 1 }),
    ).toEqual(['append.path.too_deep']);
  });
});

describe('applyUpdateOps: remove', () => {
  test('deletes a first-level key; a missing key or non-object value is left alone', () => {
    expect(value({ a: 1, b: 2 }, { type: 'remove', path: 'a' })).toEqual({ b: 2 });
    expect(value({ b: 2 }, { type: 'remove', path: 'zz' })).toEqual({ b: 2 });
    expect(value(5, { type: 'remove', path: 'a' })).toBe(5);
  });

  test('"" sets the whole value to null', () => {
    expect(value({ a: 1 }, { type: 'remove', path: '' })).toBeNull();
  });

  test('path rules', () => {
    expect(codes({}, { type: 'remove', path: 'constructor' })).toEqual(['remove.path.proto_polluted']);
  });
});

describe('applyUpdateOps: malformed ops fail as deserialization_error', () => {
  const cases: Array<[string, Json, RegExp]> = [
    ['ops not an array', { type: 'set' }, /`ops` must be an array/],
    ['op not an object', ['set'], /ops\[0\] must be an object/],
    [
      'unknown type',
      [{ type: 'multiply', path: 'a' }],
      /ops\[0\]\.type must be one of set, merge, increment, decrement, append, remove, got "multiply"/,
    ],
    ['missing type', [{ path: 'a' }], /ops\[0\]\.type must be one of/],
    ['set without path', [{ type: 'set', value: 1 }], /ops\[0\] \(set\) is missing field `path`/],
    ['array path on set', [{ type: 'set', path: ['a'], value: 1 }], /ops\[0\]\.path must be a string/],
    [
      'merge path of numbers',
      [{ type: 'merge', path: [1], value: {} }],
      /ops\[0\]\.path must be a string or an array of strings/,
    ],
    ['merge without value', [{ type: 'merge' }], /missing field `value`/],
    ['append without value', [{ type: 'append', path: 'a' }], /missing field `value`/],
    ['increment without by', [{ type: 'increment', path: 'a' }], /missing field `by`/],
    [
      'fractional by',
      [
        { type: 'set', path: 'a', value: 1 },
        { type: 'increment', path: 'a', by: 1.5 },
      ],
      /ops\[1\]\.by must be an integer/,
    ],
    ['string by', [{ type: 'decrement', path: 'a', by: '1' }], /ops\[0\]\.by must be an integer/],
    ['remove without path', [{ type: 'remove' }], /missing field `path`/],
  ];
  test.each(cases)('%s', (_name, ops, message) => {
    let thrown: unknown;
    try {
      applyUpdateOps({}, ops);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(EngineError);
    expect(thrown).toMatchObject({ code: 'deserialization_error', message: expect.stringMatching(message) });
  });
});
