/**
 * Unix-style glob matching of a URL host against `url_allowlist` entries, as iii does with the
 * `glob` crate: `*` any run of characters, `?` one character, `[abc]` / `[a-z]` / `[!a-z]` one
 * character of (or not of) a set. There is no backslash escape: write `[*]` for a literal `*`.
 * Host names are case-insensitive, so both sides are compared in lower case.
 */

type Token =
  | { kind: 'star' }
  | { kind: 'any' }
  | { kind: 'literal'; char: string }
  | { kind: 'set'; negated: boolean; ranges: Array<[string, string]> };

/** Splits a pattern into tokens; `undefined` when a `[` is never closed (matches nothing). */
function tokenize(pattern: string): Token[] | undefined {
  const chars = Array.from(pattern);
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '*') {
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === '?') {
      tokens.push({ kind: 'any' });
    } else if (c === '[') {
      let j = i + 1;
      const negated = chars[j] === '!';
      if (negated) j++;
      const ranges: Array<[string, string]> = [];
      // A `]` right after `[` or `[!` is a member, not the end of the set.
      let first = true;
      while (j < chars.length && (first || chars[j] !== ']')) {
        const lo = chars[j];
        if (chars[j + 1] === '-' && j + 2 < chars.length && chars[j + 2] !== ']') {
          ranges.push([lo, chars[j + 2]]);
          j += 3;
        } else {
          ranges.push([lo, lo]);
          j += 1;
        }
        first = false;
      }
      if (j >= chars.length) return undefined;
      tokens.push({ kind: 'set', negated, ranges });
      i = j;
    } else {
      tokens.push({ kind: 'literal', char: c });
    }
  }
  return tokens;
}

function matchesOne(token: Exclude<Token, { kind: 'star' }>, c: string): boolean {
  switch (token.kind) {
    case 'any':
      return true;
    case 'literal':
      return token.char === c;
    case 'set': {
      const inSet = token.ranges.some(([lo, hi]) => lo <= c && c <= hi);
      return inSet !== token.negated;
    }
  }
}

/** True when `host` matches the glob `pattern`. Linear backtracking: no exponential blow-up. */
export function matchesHostGlob(host: string, pattern: string): boolean {
  const tokens = tokenize(pattern.toLowerCase());
  if (tokens === undefined) return false;
  const text = Array.from(host.toLowerCase());
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const token = tokens[p];
    if (token !== undefined && token.kind !== 'star' && matchesOne(token, text[t])) {
      t++;
      p++;
    } else if (token?.kind === 'star') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (tokens[p]?.kind === 'star') p++;
  return p === tokens.length;
}

/**
 * True when the host is allowed. An empty allowlist allows every host (iii treats `[]` as `["*"]`).
 * IPv6 literal hosts are tried both as written in URLs (`[::1]`) and bare (`::1`), because the
 * bracketed form can only be written in a glob as `[[]::1[]]`.
 */
export function hostInAllowlist(host: string, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  const candidates = host.startsWith('[') && host.endsWith(']') ? [host, host.slice(1, -1)] : [host];
  return allowlist.some((pattern) => candidates.some((candidate) => matchesHostGlob(candidate, pattern)));
}
