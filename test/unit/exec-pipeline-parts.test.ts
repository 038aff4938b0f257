import { LineSplitter, MAX_LINE_CHARS } from '../../src/modules/exec/line-splitter';
import { RESTART_INITIAL_DELAY_MS, RESTART_MAX_DELAY_MS, RestartBackoff } from '../../src/modules/exec/restart-backoff';
import { parseWatchPattern, watchPatternMatches } from '../../src/modules/exec/watch-pattern';

describe('iii-exec watch patterns: root directory and extension, as the original', () => {
  const cwd = '/app';
  it.each([
    ['src/**/*.ts', '/app/src', ['ts']],
    ['./src/**/*.ts', '/app/src', ['ts']],
    ['src/*.ts', '/app/src', ['ts']],
    ['src/*/index.ts', '/app/src', ['ts']],
    ['**/*.{ts,tsx}', '/app', ['ts', 'tsx']],
    ['*.json', '/app', ['json']],
    ['config/app.yaml', '/app/config', ['yaml']],
    ['src/**', '/app/src', undefined],
    ['src', '/app/src', undefined],
    ['lib/file.*', '/app/lib', undefined],
    ['/abs/x/**/*.js', '/abs/x', ['js']],
  ])('%s -> root %s, extensions %j', (glob, root, extensions) => {
    expect(parseWatchPattern(glob, cwd)).toEqual({ glob, root, extensions });
  });

  it('matches any depth below the root, by extension only', () => {
    const pattern = parseWatchPattern('src/*.ts', cwd);
    expect(watchPatternMatches(pattern, '/app/src/a.ts')).toBe(true);
    expect(watchPatternMatches(pattern, '/app/src/deep/er/b.ts')).toBe(true);
    expect(watchPatternMatches(pattern, '/app/src/a.js')).toBe(false);
    expect(watchPatternMatches(pattern, '/app/srcx/a.ts')).toBe(false);
    expect(watchPatternMatches(pattern, '/app/a.ts')).toBe(false);
    expect(watchPatternMatches(parseWatchPattern('src/**', cwd), '/app/src/Makefile')).toBe(true);
  });
});

describe('iii-exec restart backoff', () => {
  it('doubles from 1 s to 30 s, stays there, and starts over after a reset', () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 8 }, () => backoff.next());
    expect(RESTART_INITIAL_DELAY_MS).toBe(1000);
    expect(RESTART_MAX_DELAY_MS).toBe(30_000);
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    backoff.reset();
    expect(backoff.next()).toBe(1000);
  });
});

describe('iii-exec output lines', () => {
  function split(chunks: string[], end = true): string[] {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    for (const chunk of chunks) splitter.push(chunk);
    if (end) splitter.end();
    return lines;
  }

  it('joins lines cut across chunks, drops \\n and \\r\\n, keeps empty lines and a last line without newline', () => {
    expect(split(['a', 'b\nc\r', '\n\nd'])).toEqual(['ab', 'c', '', 'd']);
    expect(split(['held'], false)).toEqual([]);
  });

  it('passes a line longer than MAX_LINE_CHARS on in pieces instead of buffering it', () => {
    const lines = split(['x'.repeat(MAX_LINE_CHARS * 2 + 5)], false);
    expect(lines).toEqual(['x'.repeat(MAX_LINE_CHARS), 'x'.repeat(MAX_LINE_CHARS)]);
  });
});
