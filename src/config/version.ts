import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The package version, read from our package.json. Found by walking up from this file, because
 * the depth differs between `src/config` (tests) and `dist/src/config` (the built CLI).
 */
function readPackageVersion(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'iii-cluster' && typeof pkg.version === 'string') return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return '0.0.0';
    dir = parent;
  }
}

/** Our version; also what the `__III_ENGINE_VERSION__` placeholder default expands to. */
export const ENGINE_VERSION: string = readPackageVersion();
