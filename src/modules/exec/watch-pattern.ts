import path from 'node:path';

/**
 * What a `watch` glob matches, read the way the original reads it: files anywhere below `root`
 * whose extension is one of `extensions`. The rest of the glob is not matched, so
 * `src/**\/*.ts`, `src/*.ts` and `src/index.ts` all mean "any .ts file under src/".
 */
export interface WatchPattern {
  glob: string;
  /** Absolute directory watched recursively. */
  root: string;
  /** Without the dot (`ts`); undefined = any file. */
  extensions: string[] | undefined;
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * `src/**\/*.ts` -> root `src`, [ts]; `**\/*.{ts,tsx}` -> root `.`, [ts, tsx]; `src/**` -> root
 * `src`, any file; `config/app.yaml` -> root `config`, [yaml]; `src` -> root `src`, any file.
 * The root is the leading segments without glob characters; without any glob, a last segment
 * with an extension is a file name, one without is a directory. Relative to `cwd`.
 */
export function parseWatchPattern(glob: string, cwd: string): WatchPattern {
  const segments = glob.split('/');
  const last = segments[segments.length - 1];
  const firstGlob = segments.findIndex((segment) => GLOB_CHARS.test(segment));
  let rootSegments: string[];
  let extensions: string[] | undefined;
  if (firstGlob !== -1) {
    rootSegments = segments.slice(0, firstGlob);
    extensions = readExtensions(path.extname(last).slice(1));
  } else if (path.extname(last) !== '') {
    rootSegments = segments.slice(0, -1);
    extensions = readExtensions(path.extname(last).slice(1));
  } else {
    rootSegments = segments;
  }
  return { glob, root: path.resolve(cwd, rootSegments.join('/') || '.'), extensions };
}

/** `ts` -> [ts]; `{ts,tsx}` -> [ts, tsx]; anything else with glob characters (`*`, `t?`) -> any. */
function readExtensions(text: string): string[] | undefined {
  const braces = /^\{([^{}*?[\]]+)\}$/.exec(text);
  if (braces) return braces[1].split(',').filter((e) => e !== '');
  return text === '' || GLOB_CHARS.test(text) ? undefined : [text];
}

/** Whether `file` (absolute) is one the pattern watches. */
export function watchPatternMatches(pattern: WatchPattern, file: string): boolean {
  const relative = path.relative(pattern.root, file);
  if (relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) return false;
  return pattern.extensions === undefined || pattern.extensions.includes(path.extname(file).slice(1));
}
