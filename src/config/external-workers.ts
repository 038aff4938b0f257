import { BUILTIN_WORKER_NAMES } from './workers';

/**
 * Worker entries that name no built-in: what iii starts as an external worker (iii-modules.md
 * §1.1: an `image:` is pulled and run, any other name goes to `iii-worker start <name>`, the way
 * `iii worker add` writes registry workers). iii-cluster starts none of them; it loads the file,
 * warns once per entry, and serves the worker when it is run by hand and connects.
 *
 * The rule for an entry whose `name` is not a built-in:
 * - with an `image:`, or a name with a `/` (`iii-hq/queue`), or one of the daemons iii ships in
 *   its `iii-worker` binary (`iii-sandbox`, `iii-worker-ops`): an external worker;
 * - else a name starting with `iii-` (any case): refused as a misspelt built-in (`iii-stat`, `iii-htpp`),
 *   with the nearest built-in name, since `iii-` is the prefix of iii's own workers and iii
 *   publishes its registry workers under `iii-hq/`;
 * - else (`todo-worker`): an external worker from the registry.
 * A built-in name with an `image:` stays an error, as in iii.
 */

/** Daemons of the `iii-worker` binary that iii resolves by name (iii-modules.md §1.1). */
export const III_WORKER_DAEMONS: readonly string[] = ['iii-sandbox', 'iii-worker-ops'];

export type UnknownEntry = { kind: 'external'; source: string } | { kind: 'typo'; suggestion?: string };

/** What an entry that names no built-in is; `image` is the entry's image, if any. */
export function classifyUnknown(name: string, image: string | undefined): UnknownEntry {
  if (image !== undefined) return { kind: 'external', source: `image ${image}` };
  if (name.includes('/')) return { kind: 'external', source: 'registry worker' };
  if (III_WORKER_DAEMONS.includes(name)) return { kind: 'external', source: 'iii-worker daemon' };
  if (name.toLowerCase().startsWith('iii-')) {
    const suggestion = nearestBuiltin(name.toLowerCase(), 3);
    return suggestion === undefined ? { kind: 'typo' } : { kind: 'typo', suggestion };
  }
  return { kind: 'external', source: 'registry worker' };
}

/** The built-in name nearest to `name`, if at most `maxEdits` edits away (ties: first listed). */
export function nearestBuiltin(name: string, maxEdits: number): string | undefined {
  let best: string | undefined;
  let bestDistance = maxEdits + 1;
  for (const candidate of BUILTIN_WORKER_NAMES) {
    const d = editDistance(name, candidate, bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Optimal-string-alignment distance (insertions, deletions, substitutions, swaps of neighbours),
 * giving up at `limit` (returned as is) so a hostile 2000-character name costs little.
 */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      row.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin >= limit) return limit;
    prev2 = prev;
    prev = row;
  }
  return Math.min(prev[b.length], limit);
}
