import fc from 'fast-check';
import { hostileString, jsonText } from './hostile-json';

/**
 * Frames a client may send the stream port (iii-modules.md §9.4): join/leave commands over a
 * small pool of ids (so storms overlap) with fields of the wrong kind, huge ids, unknown types,
 * JSON that is not a command, blank frames and raw bytes, as text or binary.
 */

export interface StreamFrame {
  data: string | Buffer;
  binary: boolean;
}

/** Stream names the fuzz clients join; the check client uses another one. */
const FUZZ_STREAMS = ['fz-a', 'fz-b'] as const;

const field = (pool: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: pool.map((s) => JSON.stringify(s)), weight: 6 },
    { arbitrary: jsonText, weight: 2 },
    // Huge strings: up to 60 KB, under the 64 KB frame limit.
    { arbitrary: fc.integer({ min: 1_000, max: 60_000 }).map((n) => JSON.stringify('s'.repeat(n))), weight: 1 },
    { arbitrary: hostileString.filter((s) => s.length < 1_000).map((s) => JSON.stringify(s)), weight: 1 },
  );

/** `{"type":..., "data":{...}}` as text, with any field missing, mistyped or extra. */
const command: fc.Arbitrary<string> = fc
  .record({
    type: fc.oneof(
      { arbitrary: fc.constantFrom('"join"', '"leave"'), weight: 8 },
      { arbitrary: fc.constantFrom('"subscribe"', '"JOIN"', '1', 'null', '["join"]', '""'), weight: 1 },
    ),
    subscriptionId: fc.option(field(fc.constantFrom('s1', 's2', 's3', 's4', 's5', '__proto__', 'constructor')), {
      freq: 8,
    }),
    streamName: fc.option(field(fc.constantFrom(...FUZZ_STREAMS)), { freq: 8 }),
    groupId: fc.option(field(fc.constantFrom('g1', 'g2')), { freq: 8 }),
    id: fc.option(field(fc.constantFrom('i1', 'i2')), { freq: 2 }),
    extra: fc.option(fc.tuple(fc.constantFrom('"__proto__"', '"constructor"', '"x"'), jsonText), { freq: 4 }),
    dataKind: fc.constantFrom('object', 'object', 'object', 'object', 'missing', 'array', 'string'),
  })
  .map((c) => {
    const fields = (['subscriptionId', 'streamName', 'groupId', 'id'] as const).flatMap((k) =>
      c[k] === null ? [] : [`"${k}":${c[k]}`],
    );
    if (c.extra) fields.push(`${c.extra[0]}:${c.extra[1]}`);
    const data =
      c.dataKind === 'object'
        ? `{${fields.join(',')}}`
        : c.dataKind === 'array'
          ? `[${fields.length}]`
          : c.dataKind === 'string'
            ? '"data"'
            : undefined;
    return `{"type":${c.type}${data === undefined ? '' : `,"data":${data}`}}`;
  });

export const streamFrame: fc.Arbitrary<StreamFrame> = fc.oneof(
  {
    arbitrary: fc
      .tuple(command, fc.boolean())
      .map(([text, binary]) => ({ data: binary ? Buffer.from(text) : text, binary })),
    weight: 8,
  },
  { arbitrary: jsonText.map((text) => ({ data: text, binary: false })), weight: 2 },
  {
    arbitrary: fc
      .constantFrom('', ' ', '\n\t', '{', 'null', '[]', '"join"')
      .map((text) => ({ data: text, binary: false })),
    weight: 1,
  },
  {
    arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ data: Buffer.from(bytes), binary: true })),
    weight: 1,
  },
);
