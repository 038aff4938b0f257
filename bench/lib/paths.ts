import path from 'node:path';

/** Repository root (this file runs as dist/bench/lib/paths.js). */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');
/** Where the compiled bench children live (dist/bench). */
export const distBench = path.resolve(__dirname, '..');
export const resultsDir = path.join(repoRoot, 'bench', 'results');
