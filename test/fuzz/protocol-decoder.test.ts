import fc from 'fast-check';
import { decodeFrame, MAX_JSON_DEPTH, type Decoded } from '../../src/protocol/codec';
import {
  deepValueText,
  hostileValueText,
  jsonText,
  nest,
  prototypeSnapshot,
  prototypeUnchanged,
} from './arbitraries/hostile-json';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';
import { mutatedWireMessage } from './arbitraries/wire-messages';

/**
 * The worker-protocol decoder (`decodeFrame`) against 40,000 hostile frames. Whatever arrives,
 * it returns one of its four outcomes without throwing, its reasons stay short enough to log,
 * an undecodable `invokefunction` that names an invocation keeps that id (so the engine can
 * answer it), and Object.prototype is never touched.
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

const KINDS = new Set(['message', 'skip', 'telemetry', 'invalid']);
/** Longest reason worth a log line; a reason quoting a 16 MB field would be a log amplifier. */
const MAX_REASON_CHARS = 512;

type Obj = Record<string, unknown>;

function parsedObject(text: string): Obj | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
  } catch {
    return undefined;
  }
}

/** Every property the decoder must keep for one frame; returns the outcome for further checks. */
function checkFrame(data: Buffer | string, isBinary: boolean): Decoded {
  const decoded = decodeFrame(data, isBinary);
  expect(KINDS.has(decoded.kind)).toBe(true);
  if (decoded.kind === 'telemetry') expect(isBinary).toBe(true);
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const parsed = decoded.kind === 'telemetry' ? undefined : parsedObject(text);
  if (decoded.kind === 'invalid') {
    expect(decoded.reason.length).toBeGreaterThan(0);
    expect(decoded.reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
    if (
      parsed?.['type'] === 'invokefunction' &&
      typeof parsed['invocation_id'] === 'string' &&
      parsed['invocation_id'] !== ''
    ) {
      expect(decoded.correlation?.invocation_id).toBe(parsed['invocation_id']);
    }
  }
  if (decoded.kind === 'message') {
    expect(decoded.message.type).toBe(parsed?.['type']);
    // What the engine forwards must serialize again (no cycles, no BigInt).
    expect(typeof JSON.stringify(decoded.message)).toBe('string');
  }
  return decoded;
}

describe('protocol decoder fuzzing (40,000 runs)', () => {
  const before = prototypeSnapshot();

  it('survives 8,000 frames of arbitrary bytes, text and binary', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, isBinary) => {
        checkFrame(Buffer.from(bytes), isBinary);
      }),
      fuzzParams(scaledRuns(8_000)),
    );
  });

  it('survives 8,000 arbitrary JSON texts (huge numbers, prototype keys, lone surrogates, NUL, long strings)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          jsonText,
          hostileValueText,
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        fc.boolean(),
        (text, isBinary) => {
          checkFrame(isBinary ? Buffer.from(text) : text, isBinary);
        },
      ),
      fuzzParams(scaledRuns(8_000)),
    );
  });

  it('survives 16,000 messages of every type with one to three fields mutated', () => {
    fc.assert(
      fc.property(mutatedWireMessage, fc.boolean(), (text, isBinary) => {
        checkFrame(isBinary ? Buffer.from(text) : text, isBinary);
      }),
      fuzzParams(scaledRuns(16_000)),
    );
  });

  it('refuses exactly the frames nested deeper than 128 levels, over 4,000 depths up to 600', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.boolean(), (depth, asArray) => {
        // The value sits under `data`, one level below the message object.
        const text = `{"type":"invokefunction","invocation_id":"caller-1","function_id":"f","data":${nest(depth, asArray)}}`;
        const decoded = checkFrame(text, false);
        if (depth + 1 > MAX_JSON_DEPTH) {
          expect(decoded).toMatchObject({
            kind: 'invalid',
            correlation: { invocation_id: 'caller-1', function_id: 'f' },
          });
          expect((decoded as { reason: string }).reason).toContain(`deeper than ${MAX_JSON_DEPTH}`);
        } else {
          // A valid frame apart from its non-UUID id: refused for the id, not for its depth.
          expect(decoded.kind).toBe('invalid');
          expect((decoded as { reason: string }).reason).toContain('UUID');
        }
      }),
      fuzzParams(scaledRuns(2_000)),
    );
    fc.assert(
      fc.property(deepValueText(fc.integer({ min: 120, max: 2_000 })), (deep) => {
        checkFrame(`{"type":"registerfunction","id":"f","metadata":${deep}}`, false);
      }),
      fuzzParams(scaledRuns(2_000)),
    );
  });

  it('hands 4,000 binary telemetry frames over whole, whatever follows the prefix', () => {
    fc.assert(
      fc.property(fc.constantFrom('OTLP', 'MTRC', 'LOGS'), fc.uint8Array({ maxLength: 256 }), (prefix, body) => {
        const frame = Buffer.concat([Buffer.from(prefix, 'latin1'), body]);
        const decoded = checkFrame(frame, true);
        expect(decoded).toEqual({ kind: 'telemetry', signal: prefix, body: Buffer.from(body) });
      }),
      fuzzParams(scaledRuns(4_000)),
    );
  });

  it('left Object.prototype as it was', () => {
    expect(prototypeUnchanged(before)).toBe(true);
    expect(({} as Obj)['x']).toBeUndefined();
  });
});

describe('protocol decoder regressions found by fuzzing', () => {
  it('keeps the reason short when the unknown type is a 64 KB string', () => {
    const decoded = decodeFrame(JSON.stringify({ type: 'x'.repeat(64_000) }), false);
    expect(decoded.kind).toBe('invalid');
    expect((decoded as { reason: string }).reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
  });
});
