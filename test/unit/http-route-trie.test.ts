import { parsePattern, splitPath } from '../../src/modules/http/route';
import { RouteConflictError, RouteTrie } from '../../src/modules/http/route-trie';

/** The HTTP trigger's route table: segment trie, static beats param, last wins, conflicts. */

function table(routes: Array<[string, string, string]>): RouteTrie<string> {
  const trie = new RouteTrie<string>();
  for (const [method, pattern, value] of routes)
    trie.insert(method, parsePattern(pattern), value, () => `${method} ${pattern}`);
  return trie;
}

const match = <T>(trie: RouteTrie<T>, method: string, path: string) =>
  trie.match(method, splitPath(path.replace(/^\//, '')));

describe('RouteTrie', () => {
  test('matches parameters and hands back their raw values by name', () => {
    const trie = table([['GET', '/users/:id/posts/:post', 'posts']]);
    expect(match(trie, 'GET', '/users/a%20b/posts/7')).toEqual({
      kind: 'found',
      value: 'posts',
      params: { id: 'a%20b', post: '7' },
    });
  });

  test('a static segment beats a parameter, and the parameter branch is tried when the static one dead-ends', () => {
    const trie = table([
      ['GET', '/files/:name/raw', 'param-raw'],
      ['GET', '/files/readme', 'static'],
    ]);
    expect(match(trie, 'GET', '/files/readme')).toMatchObject({ value: 'static' });
    expect(match(trie, 'GET', '/files/readme/raw')).toMatchObject({ value: 'param-raw', params: { name: 'readme' } });
  });

  test('the root path and trailing slashes are routes of their own', () => {
    const trie = table([
      ['GET', '/', 'root'],
      ['GET', '/a/', 'a-slash'],
    ]);
    expect(match(trie, 'GET', '/')).toMatchObject({ value: 'root' });
    expect(match(trie, 'GET', '/a/')).toMatchObject({ value: 'a-slash' });
    expect(match(trie, 'GET', '/a')).toEqual({ kind: 'not_found' });
  });

  test('a parameter does not match an empty segment', () => {
    const trie = table([['GET', '/u/:id', 'u']]);
    expect(match(trie, 'GET', '/u/')).toEqual({ kind: 'not_found' });
  });

  test('GET answers HEAD; other methods get method_not_allowed with the allowed list', () => {
    const trie = table([
      ['GET', '/x', 'get'],
      ['POST', '/x', 'post'],
    ]);
    expect(match(trie, 'HEAD', '/x')).toMatchObject({ kind: 'found', value: 'get' });
    expect(match(trie, 'DELETE', '/x')).toEqual({ kind: 'method_not_allowed', allow: ['GET', 'HEAD', 'POST'] });
  });

  test('the same method and shape with other parameter names conflicts; other methods may name them freely', () => {
    const trie = table([['GET', '/a/:x', 'first']]);
    expect(() => trie.insert('GET', parsePattern('/a/:y'), 'second', () => 'GET /a/:y')).toThrow(RouteConflictError);
    expect(() => trie.insert('GET', parsePattern('/a/:y'), 'second', () => 'GET /a/:y')).toThrow(
      'GET /a/:y conflicts with already-registered route GET /a/:x',
    );
    trie.insert('POST', parsePattern('/a/:y'), 'post', () => 'POST /a/:y');
    expect(match(trie, 'POST', '/a/1')).toMatchObject({ params: { y: '1' } });
  });

  test('re-inserting a route replaces its value; remove honours the predicate and prunes empty branches', () => {
    const trie = table([['GET', '/k/:id', 'old']]);
    trie.insert('GET', parsePattern('k/:id'), 'new', () => '');
    expect(trie.size).toBe(1);
    expect(trie.remove('GET', parsePattern('/k/:id'), (v) => v === 'old')).toBe(false);
    expect(match(trie, 'GET', '/k/1')).toMatchObject({ value: 'new' });
    expect(trie.remove('GET', parsePattern('/k/:id'), (v) => v === 'new')).toBe(true);
    expect(trie.size).toBe(0);
    expect(match(trie, 'GET', '/k/1')).toEqual({ kind: 'not_found' });
  });

  test('finds a route among 10,000 sibling routes (the bench measures that the cost does not grow)', () => {
    const trie = new RouteTrie<number>();
    for (let i = 0; i < 10_000; i++) trie.insert('GET', parsePattern(`/api/r${i}/:id`), i, () => '');
    expect(trie.size).toBe(10_000);
    expect(match(trie, 'GET', '/api/r9999/7')).toEqual({ kind: 'found', value: 9999, params: { id: '7' } });
  });
});

describe('parsePattern', () => {
  test('a leading slash is optional and {name} reads as :name', () => {
    expect(parsePattern('users/{id}')).toEqual(parsePattern('/users/:id'));
  });

  test('a parameter without a name or named twice is refused with the reason', () => {
    expect(() => parsePattern('/a/:')).toThrow('segment ":" needs a parameter name');
    expect(() => parsePattern('/a/:id/b/:id')).toThrow('parameter "id" appears twice');
  });
});
