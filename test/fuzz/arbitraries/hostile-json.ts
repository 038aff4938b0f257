import fc from 'fast-check';

/**
 * Building blocks of adversarial JSON, produced as TEXT so that what `JSON.stringify` cannot write
 * still reaches the parsers: numbers out of double range (`1e400`), integers past 2^53, duplicate
 * keys, `__proto__` as an own key, lone surrogates as escapes.
 */

/** Keys that reach Object.prototype, or shadow its methods, when code writes `obj[key]`. */
export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'toJSON',
] as const;

/** Any UTF-16 code unit, lone surrogates included (fast-check's string units keep pairs whole). */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings that break naive handling: NUL, lone surrogates, BOM, RTL override, escapes, placeholders. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 24 }), weight: 3 },
  { arbitrary: fc.string({ unit: codeUnit, maxLength: 12 }), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      ...PROTOTYPE_KEYS,
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udfff',
      'x\ud83d',
      '\ufeff',
      '\u202e',
      '😀',
      '%00',
      '%zz',
      '../..',
      '${HOME}',
      '"',
      '\\',
      '\r\n',
      'join',
      'leave',
      'invokefunction',
    ),
    weight: 3,
  },
  // Long strings: 1 KB to 64 KB (the stream port's frame limit is 64 KB).
  { arbitrary: fc.integer({ min: 1_000, max: 64_000 }).map((n) => 'x'.repeat(n)), weight: 1 },
);

/** Number tokens as written on the wire, including ones no double represents exactly. */
export const numberToken: fc.Arbitrary<string> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
  fc.constantFrom(
    '1e400',
    '-1e400',
    '1e-400',
    '-0',
    '123456789012345678901234567890',
    '9007199254740993',
    '1.7976931348623157e308',
    '4294967296',
    '-1',
    '0',
  ),
);

const stringToken: fc.Arbitrary<string> = hostileString.map((s) => JSON.stringify(s));

/** Object keys: ordinary, prototype-reaching, and hostile. */
export const keyToken: fc.Arbitrary<string> = fc
  .oneof({ arbitrary: fc.constantFrom(...PROTOTYPE_KEYS), weight: 1 }, { arbitrary: hostileString, weight: 2 })
  .map((k) => JSON.stringify(k));

/** Nesting depth past which a value is usually cut; the decoder's limit is 128. */
export const deepValueText = (depth: fc.Arbitrary<number>): fc.Arbitrary<string> =>
  fc.tuple(depth, fc.boolean()).map(([d, asArray]) => nest(d, asArray));

/** A value of exactly `depth` nested levels: `[[1]]` is depth 2. */
export function nest(depth: number, asArray: boolean): string {
  return asArray
    ? '['.repeat(depth) + '1' + ']'.repeat(depth)
    : '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

/** Any JSON value as text, shallow (depth <= 4), with the hostile tokens above. */
export const jsonText: fc.Arbitrary<string> = fc.letrec<{
  value: string;
  scalar: string;
  array: string;
  object: string;
}>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, tie('scalar'), tie('array'), tie('object')),
  scalar: fc.oneof(numberToken, stringToken, fc.constantFrom('true', 'false', 'null')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  object: fc
    .array(fc.tuple(keyToken, tie('value')), { maxLength: 4 })
    .map((entries) => `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`),
})).value;

/** A value of the wrong kind for almost any field, or a deep one. */
export const hostileValueText: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: jsonText, weight: 6 },
  { arbitrary: deepValueText(fc.integer({ min: 100, max: 300 })), weight: 1 },
);

/** Own property names and values of Object.prototype, to prove a run did not pollute it. */
export function prototypeSnapshot(): Map<string, unknown> {
  const proto = Object.prototype as unknown as Record<string, unknown>;
  return new Map(Object.getOwnPropertyNames(proto).map((name) => [name, proto[name]]));
}

/** True when nothing was added to, or replaced on, Object.prototype since `before`. */
export function prototypeUnchanged(before: Map<string, unknown>): boolean {
  const after = prototypeSnapshot();
  if (after.size !== before.size) return false;
  for (const [name, value] of after) if (before.get(name) !== value) return false;
  return Object.getPrototypeOf(Object.prototype) === null;
}
