import type { WorkerId } from './workers';
import { isPlainObject } from './formats';

/**
 * Config the original defines and we accept (so an iii config.yaml loads unchanged) but do not
 * act on yet. Each match becomes a warning from `loadConfig`; remove an entry when the feature
 * lands.
 */
export interface UnimplementedKey {
  worker: WorkerId;
  /** A key of the worker's `config:` block, or `*` for the worker as a whole. */
  key: string;
  /** Only when the block's `adapter.name` is this. */
  adapter?: string;
  /** Only when this holds for the key's value (as written). */
  when?: (value: unknown) => boolean;
  /** What the key does, for the warning. */
  what: string;
  /**
   * What is not built and what happens instead, replacing "is accepted but not implemented"
   * (the iii v0.23 keys, whose users expect a behaviour we do not have yet).
   */
  consequence?: (value: unknown) => string;
}

export const NOT_IMPLEMENTED_KEYS: readonly UnimplementedKey[] = [
  { worker: 'observability', key: 'collapse_spans', what: 'span collapsing' },
  {
    worker: 'observability',
    key: 'live_spans',
    what: 'pending spans visible in the memory store',
    consequence: () => 'spans are stored when they end, never while pending',
  },
  {
    worker: 'observability',
    key: 'trace_storage',
    what: 'iii v0.23 on-disk traces',
    consequence: () =>
      'trace storage on disk is not implemented, so traces stay in memory only (memory_max_spans) and are gone after a restart',
  },
  { worker: 'telemetry', key: '*', what: 'anonymous usage telemetry; we send none' },
];

/** Warnings for one listed worker whose block (as written) is `block`. */
export function unimplementedWarnings(worker: WorkerId, entryName: string, block: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  for (const rule of NOT_IMPLEMENTED_KEYS) {
    if (rule.worker !== worker) continue;
    if (rule.key === '*') {
      warnings.push(`${entryName}: worker "${entryName}" (${rule.what}) is accepted but not implemented`);
      continue;
    }
    if (!(rule.key in block)) continue;
    const value = block[rule.key];
    if (rule.adapter !== undefined && (!isPlainObject(value) || value['name'] !== rule.adapter)) continue;
    if (rule.when !== undefined && !rule.when(value)) continue;
    const tail =
      rule.consequence === undefined ? 'is accepted but not implemented' : `accepted; ${rule.consequence(value)}`;
    warnings.push(`${entryName}: key "${rule.key}" (${rule.what}) ${tail}`);
  }
  return warnings;
}
