import fc from 'fast-check';
import { MalformedBodyError, parseBody } from '../../src/modules/http/body';
import { decodeParams, requestTarget } from '../../src/modules/http/request';
import { parsePattern, splitPath } from '../../src/modules/http/route';
import { RouteConflictError, RouteTrie, type Match, type Segment } from '../../src/modules/http/route-trie';
import { hostileString } from './arbitraries/hostile-json';
import { CONTENT_TYPES, multipartBody, pathSegment, requestBody, requestPath } from './arbitraries/http-requests';
import { FUZZ_TEST_TIMEOUT_MS, fuzzParams, scaledRuns } from './arbitraries/runs';

/**
 * The pure parts of the HTTP request path, in process, 30,000 runs: the request target split,
 * path-parameter decoding, body parsing (JSON, url-encoded, multipart) and the route trie,
 * checked against a plain reference model of "static beats param" matching.
 */
jest.setTimeout(FUZZ_TEST_TIMEOUT_MS);

describe('HTTP request parsing fuzzing (30,000 runs)', () => {
  it('splits 8,000 request targets (origin, absolute and junk forms) without throwing', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          requestPath,
          fc.string({ unit: 'binary', maxLength: 60 }),
          fc.constantFrom('*', '', 'http://h', 'http://h?x/y', 'h/x'),
        ),
        (url) => {
          const { path, query } = requestTarget(url);
          expect(path.includes('?')).toBe(false);
          for (const value of Object.values(query)) expect(typeof value).toBe('string');
          if (url.startsWith('/')) expect('/' + path).toBe(url.split('?')[0]);
        },
      ),
      fuzzParams(scaledRuns(8_000)),
    );
  });

  it('decodes 4,000 sets of path parameters or names the segment that is not percent-encoding', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('id', 'x', 'y'),
          fc.oneof(
            pathSegment,
            hostileString.filter((s) => s.length < 100),
          ),
        ),
        (raw) => {
          const decoded = decodeParams(raw);
          if (decoded.ok) {
            for (const [name, value] of Object.entries(raw))
              expect(decoded.params[name]).toBe(decodeURIComponent(value));
          } else {
            expect(Object.values(raw)).toContain(decoded.segment);
            expect(() => decodeURIComponent(decoded.segment)).toThrow(URIError);
          }
        },
      ),
      fuzzParams(scaledRuns(4_000)),
    );
  });

  it('parses 10,000 bodies of every content type to JSON or a MalformedBodyError, never hanging', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.string({ maxLength: 40 })), { nil: undefined }),
        requestBody,
        async (contentType, text) => {
          await checkBody(contentType, Buffer.from(text, 'utf8'));
        },
      ),
      fuzzParams(scaledRuns(8_000)),
    );
    await fc.assert(
      fc.asyncProperty(multipartBody, async (text) => {
        await checkBody('multipart/form-data; boundary=xyz', Buffer.from(text, 'utf8'));
      }),
      fuzzParams(scaledRuns(2_000)),
    );
  });

  it('matches like a reference model over 8,000 sequences of route inserts, removals and lookups', () => {
    fc.assert(
      fc.property(fc.array(trieOp, { maxLength: 30 }), (ops) => {
        const trie = new RouteTrie<number>();
        const model = new ReferenceRoutes();
        ops.forEach((op, value) => {
          if (op.kind === 'insert') {
            const expected = model.insert(op.method, op.segments, value);
            const run = () => trie.insert(op.method, op.segments, value, () => 'route');
            if (expected === 'conflict') expect(run).toThrow(RouteConflictError);
            else run();
          } else if (op.kind === 'remove') {
            const removes = (v: number) => v % 2 === op.parity;
            expect(trie.remove(op.method, op.segments, removes)).toBe(model.remove(op.method, op.segments, removes));
          } else {
            expect(trie.match(op.method, op.path)).toEqual(model.match(op.method, op.path));
          }
          expect(trie.size).toBe(model.size);
        });
      }),
      fuzzParams(scaledRuns(8_000)),
    );
  });
});

describe('HTTP parsing regressions found by fuzzing', () => {
  it('a multipart body cut inside a file part is a MalformedBodyError, not an uncaught stream error', async () => {
    const body = Buffer.from('--xyz\r\nContent-Disposition: form-data; name="a"; filename="f"\r\n\r\nvalue');
    await expect(parseBody('multipart/form-data; boundary=xyz', body)).rejects.toThrow(
      new MalformedBodyError('Malformed multipart/form-data body: Unexpected end of form'),
    );
  });

  it('a file part closed by the final boundary right after its headers is refused instead of hanging', async () => {
    const body = Buffer.from(
      '--xyz\r\nContent-Disposition: form-data; name=""\r\n\r\n          \r\n--xyz\r\nContent-Disposition: form-data; name=""; filename="f.txt"\r\nContent-Type: text/plain\r\n\r\n--xyz\r\n--',
    );
    await expect(parseBody('multipart/form-data; boundary=xyz', body)).rejects.toThrow(
      new MalformedBodyError('Malformed multipart/form-data body: a file part has no end'),
    );
  });

  it('keeps a multipart field named "__proto__" as a field', async () => {
    const body = Buffer.from('--xyz\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\nv\r\n--xyz--\r\n');
    const parsed = (await parseBody('multipart/form-data; boundary=xyz', body)) as { fields: Record<string, string> };
    expect(Object.entries(parsed.fields)).toEqual([['__proto__', 'v']]);
  });
});

/** The body parses to serializable JSON, or (multipart) settles within a second. */
async function checkBody(contentType: string | undefined, raw: Buffer): Promise<void> {
  const parsed = parseBody(contentType, raw);
  if (!(parsed instanceof Promise)) {
    expect(typeof JSON.stringify(parsed)).toBe('string');
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), 1_000)));
  const outcome = await Promise.race([
    parsed.then(
      (json) => ({ json }),
      (err: unknown) => ({ err }),
    ),
    hang,
  ]);
  clearTimeout(timer);
  expect(outcome).not.toBe('hang');
  if (outcome !== 'hang' && 'err' in outcome) expect(outcome.err).toBeInstanceOf(MalformedBodyError);
  if (outcome !== 'hang' && 'json' in outcome) expect(typeof JSON.stringify(outcome.json)).toBe('string');
}

// --- route trie model ------------------------------------------------------------------------

type TrieOp =
  | { kind: 'insert'; method: string; segments: Segment[] }
  | { kind: 'remove'; method: string; segments: Segment[]; parity: number }
  | { kind: 'match'; method: string; path: string[] };

const METHODS = ['GET', 'POST', 'HEAD', 'DELETE'];

/** Patterns over a tiny alphabet, so that routes overlap; a parameter's name varies to make conflicts. */
const pattern: fc.Arbitrary<Segment[]> = fc
  .array(fc.oneof(fc.constantFrom('a', 'b', ''), fc.constantFrom(':p', ':q')), { maxLength: 3 })
  .map((parts) => parsePattern(parts.map((p, i) => (p.startsWith(':') ? `${p}${i}` : p)).join('/')));

const trieOp: fc.Arbitrary<TrieOp> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), method: fc.constantFrom(...METHODS), segments: pattern }),
  fc.record({
    kind: fc.constant('remove' as const),
    method: fc.constantFrom(...METHODS),
    segments: pattern,
    parity: fc.constantFrom(0, 1),
  }),
  fc.record({
    kind: fc.constant('match' as const),
    method: fc.constantFrom(...METHODS, 'PUT'),
    path: fc.array(fc.constantFrom('a', 'b', '', 'c'), { maxLength: 4 }).map((segs) => splitPath(segs.join('/'))),
  }),
);

interface Route {
  method: string;
  segments: Segment[];
  value: number;
}

/** Every route in a list; matching tries every shape in "static before param" order. */
class ReferenceRoutes {
  private routes: Route[] = [];

  get size(): number {
    return this.routes.length;
  }

  insert(method: string, segments: Segment[], value: number): 'ok' | 'conflict' {
    const existing = this.find(method, segments);
    if (existing) {
      if (names(existing.segments).join('/') !== names(segments).join('/')) return 'conflict';
      existing.value = value;
      existing.segments = segments;
      return 'ok';
    }
    this.routes.push({ method, segments, value });
    return 'ok';
  }

  remove(method: string, segments: Segment[], shouldRemove: (v: number) => boolean): boolean {
    const existing = this.find(method, segments);
    if (!existing || !shouldRemove(existing.value)) return false;
    this.routes = this.routes.filter((r) => r !== existing);
    return true;
  }

  match(method: string, path: string[]): Match<number> {
    const fits = this.routes.filter(
      (r) =>
        r.segments.length === path.length &&
        r.segments.every((s, i) => (s.kind === 'static' ? s.text === path[i] : path[i] !== '')),
    );
    if (fits.length === 0) return { kind: 'not_found' };
    // Lowest shape first: at the first position where two shapes differ, the static one wins.
    const best = fits.map((r) => shapeOf(r.segments)).sort(preferStatic)[0];
    const atBest = fits.filter((r) => shapeOf(r.segments) === best);
    const stored =
      atBest.find((r) => r.method === method) ??
      (method === 'HEAD' ? atBest.find((r) => r.method === 'GET') : undefined);
    if (!stored) {
      const allow = atBest.map((r) => r.method);
      if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD');
      return { kind: 'method_not_allowed', allow: allow.sort() };
    }
    const params: Record<string, string> = {};
    stored.segments.forEach((s, i) => {
      if (s.kind === 'param') params[s.name] = path[i]!;
    });
    return { kind: 'found', value: stored.value, params };
  }

  private find(method: string, segments: Segment[]): Route | undefined {
    return this.routes.find((r) => r.method === method && shapeOf(r.segments) === shapeOf(segments));
  }
}

/** `s:a|p|s:` : statics by text, parameters as `p` (names do not make a route different). */
function shapeOf(segments: Segment[]): string {
  return segments.map((s) => (s.kind === 'static' ? `s:${s.text}` : 'p')).join('|');
}

function names(segments: Segment[]): string[] {
  return segments.flatMap((s) => (s.kind === 'param' ? [s.name] : []));
}

function preferStatic(a: string, b: string): number {
  const [x, y] = [a.split('|'), b.split('|')];
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue;
    const [xs, ys] = [x[i].startsWith('s:'), y[i].startsWith('s:')];
    if (xs !== ys) return xs ? -1 : 1;
  }
  return 0;
}
