import fc from 'fast-check';
import { hostileString, jsonText } from './hostile-json';

/**
 * HTTP requests for the `iii-http` port: well-formed ones with odd parts (sent with
 * `http.request`) and malformed bytes (sent on raw sockets), plus the pieces the in-process
 * tests feed to the parsing functions.
 */

/** Path segments: the fuzz routes' own words, dot segments, bad and odd percent-encoding. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom('items', 'a', 'b', 'c', 'upload', 'boom', 'sub', '1', 'x'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      '',
      '.',
      '..',
      '%2e%2e',
      '%2F',
      '%2f..',
      '%00',
      '%zz',
      '%',
      '%E2%82%AC',
      '%ED%A0%80',
      '%C0%AF',
      '%FF',
      '+',
      ';x=1',
      '~',
      '*',
      '%25',
    ),
    weight: 4,
  },
  { arbitrary: hostileString.filter((s) => s.length < 200).map((s) => encodeURIComponentLoose(s)), weight: 2 },
  { arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => 'x'.repeat(n)), weight: 1 },
);

/** encodeURIComponent, except that a lone surrogate is written as its (invalid) UTF-8 bytes. */
function encodeURIComponentLoose(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

const queryString: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc
    .array(fc.tuple(pathSegment, pathSegment), { maxLength: 6 })
    .map((pairs) => '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  fc.constantFrom(
    '?',
    '??',
    '?&&==&',
    '?a=1&a=2',
    '?__proto__=x&constructor=y',
    '?%=%',
    '?a=%ZZ',
    '?' + 'q=1&'.repeat(500),
  ),
);

/** An origin-form target: `/` + segments joined by `/` or `//`, then a query. */
export const requestPath: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.tuple(pathSegment, fc.constantFrom('/', '/', '/', '//')), { maxLength: 6 }), queryString)
  .map(([parts, query]) => '/' + parts.map(([seg, sep], i) => (i === 0 ? seg : sep + seg)).join('') + query);

const tokenChar = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".split(''),
);
const headerName = fc.oneof(
  fc.constantFrom(
    'x-a',
    'X-A',
    'accept',
    'origin',
    'authorization',
    'cookie',
    'user-agent',
    'x-forwarded-for',
    '__proto__',
    'constructor',
    'access-control-request-method',
  ),
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 30 }),
);
/** Header values `http.request` accepts: visible ASCII, spaces and tabs, Latin-1. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }),
  fc.constantFrom('', ' ', '\t', 'é', 'null', '{"a":1}', 'GET', '*', 'https://evil.example'),
  fc.integer({ min: 1_000, max: 12_000 }).map((n) => 'v'.repeat(n)),
);

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'application/jsonp',
  'text/json',
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=\u00e9',
  'multipart/form-data',
  'multipart/form-data; boundary=',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data; boundary="a b"',
  'multipart/form-data; boundary=xyz; boundary=abc',
  'text/plain',
  'application/octet-stream',
  ';;;',
  'a/b/c',
] as const;

/** Multipart bodies for boundary `xyz`, whole or cut anywhere, with odd part headers. */
export const multipartBody: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(
      fc.record({
        name: fc.oneof(
          fc.constantFrom('a', '__proto__', 'constructor', '', '"'),
          hostileString.filter((s) => s.length < 40),
        ),
        file: fc.boolean(),
        value: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('--xyz', '\r\n--xyz\r\n', '\u0000')),
      }),
      { maxLength: 4 },
    ),
    fc.boolean(),
    fc.option(fc.nat()),
  )
  .map(([parts, closed, cut]) => {
    const body =
      parts
        .map(
          (p) =>
            `--xyz\r\nContent-Disposition: form-data; name="${p.name}"${p.file ? '; filename="f.txt"\r\nContent-Type: text/plain' : ''}\r\n\r\n${p.value}\r\n`,
        )
        .join('') + (closed ? '--xyz--\r\n' : '');
    return cut === null ? body : body.slice(0, cut % (body.length + 1));
  });

export const requestBody: fc.Arbitrary<string> = fc.oneof(
  jsonText,
  fc.constantFrom(
    '',
    '{',
    '{"a":',
    'null',
    '[]',
    '{"__proto__":{"polluted":1}}',
    '%%%&=&__proto__=1&a=%ZZ',
    'a=1&a=2&b',
    '\u0000\u0001',
  ),
  multipartBody,
  fc.string({ unit: 'binary', maxLength: 200 }),
  // Past the fuzz engine's body_limit_bytes of 4096.
  fc.integer({ min: 3_000, max: 9_000 }).map((n) => 'b'.repeat(n)),
);

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  contentType: string | undefined;
  body: string | undefined;
  /** Sent in several chunks without content-length (chunked transfer encoding). */
  chunked: boolean;
}

/** The routes the fuzz engine serves (method, api_path); half the requests aim at one of them. */
export const FUZZ_ROUTES = [
  ['GET', '/items/:id'],
  ['POST', '/items/:id'],
  ['PUT', '/upload'],
  ['GET', '/a/b/c'],
  ['DELETE', '/items/:id/sub/:sub'],
  ['POST', '/boom'],
] as const;

/** A request line that reaches a handler: a route's method and path, its parameters fuzzed. */
const routedTarget: fc.Arbitrary<{ method: string; path: string }> = fc
  .tuple(fc.constantFrom(...FUZZ_ROUTES), pathSegment, pathSegment, queryString)
  .map(([[method, pattern], a, b, query]) => ({ method, path: pattern.replace(':id', a).replace(':sub', b) + query }));

const anyTarget: fc.Arbitrary<{ method: string; path: string }> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'FUZZ', 'PROPFIND', 'CONNECTX'),
  path: requestPath,
});

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    target: fc.oneof(routedTarget, anyTarget),
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 40 }),
    contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined }),
    body: fc.option(requestBody, { nil: undefined }),
    chunked: fc.boolean(),
  })
  .map(({ target, ...rest }) => ({ ...target, ...rest }));

// --- malformed requests for raw sockets -----------------------------------------------------

const rawMethod = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'G ET', '', 'GET\u0000', 'get', 'PRI', 'CONNECT', 'ÄÖ'),
  fc.string({ unit: tokenChar, maxLength: 12 }),
);
const rawTarget = fc.oneof(
  requestPath,
  routedTarget.map((r) => r.path),
  fc.constantFrom(
    '*',
    '',
    ' ',
    '/a b',
    '/\u0000',
    '/é',
    '/😀',
    'http://h/items/1',
    'http://h',
    '//items/1',
    'items/1',
    '/items/1#frag',
    '/%',
  ),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => '/' + s),
);
const rawVersion = fc.constantFrom(
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/9.9',
  'HTTP/1.1x',
  'http/1.1',
  'HTTP/',
  '',
);
const rawHeaderLine = fc.oneof(
  fc.tuple(headerName, headerValue).map(([n, v]) => `${n}: ${v}`),
  fc.constantFrom(
    'Content-Length: 5',
    'Content-Length: -1',
    'Content-Length: 1e3',
    'Content-Length: 99999999999999999999',
    'Content-Length: 5, 6',
    'Content-Length: 3\r\nContent-Length: 4',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding: chunked\r\nContent-Length: 3',
    'Transfer-Encoding: identity',
    'Content-Type: multipart/form-data; boundary=xyz',
    'Content-Type: application/json',
    'Expect: 100-continue',
    'Expect: nonsense',
    'Connection: close',
    'Host:',
    'no-colon-here',
    ' folded: continuation',
    ': empty-name',
    'X-Nul: a\u0000b',
    'X-Cr: a\rb',
    'X-Bare-Lf: a\nb',
    'Upgrade: websocket\r\nConnection: Upgrade',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
);
const chunkedBody = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 20 }).map((s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`),
      fc.constantFrom(
        'zz\r\n',
        '-1\r\n',
        'ffffffffffffffffff\r\nx\r\n',
        '5\r\nab\r\n',
        '3;ext=1\r\nabc\r\n',
        '0\r\n\r\n',
        '0\r\nX-Trailer: 1\r\n\r\n',
      ),
    ),
    { maxLength: 5 },
  )
  .map((chunks) => chunks.join(''));

/** Bytes of one (or two pipelined) malformed requests, possibly cut short. */
const junkRequest: fc.Arbitrary<string> = fc
  .record({
    method: rawMethod,
    target: rawTarget,
    version: rawVersion,
    lineEnd: fc.constantFrom('\r\n', '\r\n', '\n', '\r', ''),
    // Node refuses an HTTP/1.1 request without Host (400): most requests carry one, to get further.
    host: fc.constantFrom('Host: fuzz', 'Host: fuzz', 'Host: fuzz', ''),
    headers: fc.array(rawHeaderLine, { maxLength: 12 }),
    body: fc.oneof(requestBody, chunkedBody),
  })
  .map(
    (r) =>
      `${r.method} ${r.target} ${r.version}${r.lineEnd}${[r.host, ...r.headers]
        .filter((h) => h !== '')
        .map((h) => h + r.lineEnd)
        .join('')}${r.lineEnd}${r.body}`,
  );

/** A route's valid request line and Host, then framing trouble: conflicting lengths, bad chunks, odd bodies. */
const nearlyValidRequest: fc.Arbitrary<string> = fc
  .record({
    target: routedTarget,
    headers: fc.array(
      rawHeaderLine.filter((h) => !/[\u0000-\u001f\u007f]/.test(h.replace(/\r\n/g, ''))),
      { maxLength: 3 },
    ),
    body: fc.oneof(fc.constant(''), requestBody, chunkedBody),
  })
  .map(
    (r) =>
      `${r.target.method} ${r.target.path} HTTP/1.1\r\nHost: fuzz\r\n${r.headers.map((h) => `${h}\r\n`).join('')}\r\n${r.body}`,
  );

export const rawRequest: fc.Arbitrary<Buffer> = fc
  .record({ request: fc.oneof(junkRequest, nearlyValidRequest), pipelined: fc.boolean(), cut: fc.option(fc.nat()) })
  .map((r) => {
    let text = r.request + (r.pipelined ? 'GET /items/1 HTTP/1.1\r\nHost: fuzz\r\n\r\n' : '');
    if (r.cut !== null) text = text.slice(0, r.cut % (text.length + 1));
    return Buffer.from(text, 'utf8');
  });
