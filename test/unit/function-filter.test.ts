import {
  anyFilterMatches,
  filterMatches,
  matchPattern,
  wildcardMatches,
} from '../../src/engine/access/function-filter';

describe('match("pattern") strings', () => {
  it('reads the pattern in double or single quotes', () => {
    expect(matchPattern('match("api::*")')).toBe('api::*');
    expect(matchPattern("match('api::*')")).toBe('api::*');
    expect(matchPattern(' match("x") ')).toBe('x');
  });

  it('is undefined for any other string', () => {
    for (const text of ['api::*', 'match(api::*)', 'match("x\')', 'matches("x")', 'match("x")y'])
      expect(matchPattern(text)).toBeUndefined();
  });
});

describe('wildcard patterns', () => {
  it('are anchored at both ends', () => {
    expect(wildcardMatches('api::*', 'api::users')).toBe(true);
    expect(wildcardMatches('api::*', 'x::api::users')).toBe(false);
    expect(wildcardMatches('*::get', 'users::get')).toBe(true);
    expect(wildcardMatches('*::get', 'users::get::all')).toBe(false);
    expect(wildcardMatches('api', 'api::x')).toBe(false);
    expect(wildcardMatches('api', 'api')).toBe(true);
  });

  it('let * alone match everything, the empty id included', () => {
    for (const id of ['', 'a', 'engine::functions::list']) expect(wildcardMatches('*', id)).toBe(true);
  });

  it('match several stars, each possibly empty, without overlapping head and tail', () => {
    expect(wildcardMatches('a*b*c', 'abc')).toBe(true);
    expect(wildcardMatches('a*b*c', 'axxbyyc')).toBe(true);
    expect(wildcardMatches('a*b*c', 'axxcyyb')).toBe(false);
    expect(wildcardMatches('ab*ba', 'aba')).toBe(false);
    expect(wildcardMatches('ab*ba', 'abba')).toBe(true);
    expect(wildcardMatches('**', 'x')).toBe(true);
  });

  it('treat regular-expression characters literally', () => {
    expect(wildcardMatches('a.b', 'axb')).toBe(false);
    expect(wildcardMatches('a.b*', 'a.b(1)')).toBe(true);
  });
});

describe('function filters', () => {
  it('test a string filter against the id (a bare string is the same pattern)', () => {
    expect(filterMatches('match("public::*")', { id: 'public::echo' })).toBe(true);
    expect(filterMatches('public::*', { id: 'public::echo' })).toBe(true);
    expect(filterMatches('match("public::*")', { id: 'private::echo' })).toBe(false);
  });

  it('test a metadata filter key by key: exact JSON equality or a match() pattern for strings', () => {
    const fn = { id: 'x', metadata: { public: true, tier: 'gold-plus', limits: { rps: 5 } } };
    expect(filterMatches({ metadata: { public: true } }, fn)).toBe(true);
    expect(filterMatches({ metadata: { public: 'true' } }, fn)).toBe(false);
    expect(filterMatches({ metadata: { tier: 'match("gold*")' } }, fn)).toBe(true);
    expect(filterMatches({ metadata: { tier: 'gold*' } }, fn)).toBe(false);
    expect(filterMatches({ metadata: { limits: { rps: 5 } } }, fn)).toBe(true);
    expect(filterMatches({ metadata: { limits: { rps: 6 } } }, fn)).toBe(false);
    expect(filterMatches({ metadata: { public: true, tier: 'silver' } }, fn)).toBe(false);
  });

  it('never let a metadata filter match a function without that key or without metadata', () => {
    expect(filterMatches({ metadata: { missing: null } }, { id: 'x', metadata: {} })).toBe(false);
    expect(filterMatches({ metadata: { public: true } }, { id: 'x' })).toBe(false);
    expect(filterMatches({ metadata: { public: true } }, { id: 'x', metadata: [true] })).toBe(false);
    expect(filterMatches({ metadata: { n: 'match("*")' } }, { id: 'x', metadata: { n: 1 } })).toBe(false);
  });

  it('are OR-ed', () => {
    const filters = ['match("a::*")', { metadata: { open: true } }];
    expect(anyFilterMatches(filters, { id: 'a::1' })).toBe(true);
    expect(anyFilterMatches(filters, { id: 'b::1', metadata: { open: true } })).toBe(true);
    expect(anyFilterMatches(filters, { id: 'b::1' })).toBe(false);
    expect(anyFilterMatches([], { id: 'a::1' })).toBe(false);
  });
});

describe('iii v0.23 {match, namespace} filters (namespaces not implemented: every function is in "default")', () => {
  it('match by pattern (bare or match(...)) when they name "default" or no namespace', () => {
    expect(filterMatches({ match: 'api::*', namespace: 'default' }, { id: 'api::users' })).toBe(true);
    expect(filterMatches({ match: 'match("api::*")', namespace: 'default' }, { id: 'api::users' })).toBe(true);
    expect(filterMatches({ match: 'api::*' }, { id: 'api::users' })).toBe(true);
    expect(filterMatches({ match: 'api::*', namespace: 'default' }, { id: 'other::users' })).toBe(false);
  });

  it('match nothing when they name another namespace (the allow-list fails closed)', () => {
    expect(filterMatches({ match: '*', namespace: 'internal' }, { id: 'api::users' })).toBe(false);
    expect(filterMatches({ match: '*', namespace: 'internal' }, { id: 'api::users', metadata: { match: '*' } })).toBe(
      false,
    );
  });

  it('compare against the target namespace when one is given', () => {
    expect(filterMatches({ match: '*', namespace: 'internal' }, { id: 'x', namespace: 'internal' })).toBe(true);
    expect(filterMatches({ match: '*', namespace: 'default' }, { id: 'x', namespace: 'internal' })).toBe(false);
  });
});
