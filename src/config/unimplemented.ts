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
  /** What the key does, for the warning. */
  what: string;
}

export const NOT_IMPLEMENTED_KEYS: readonly UnimplementedKey[] = [
  { worker: 'queue', key: 'adapter', adapter: 'bridge', what: 'bridge adapter' },
  { worker: 'configuration', key: 'adapter', adapter: 'bridge', what: 'bridge adapter' },
  { worker: 'observability', key: 'alerts', what: 'metric alerts' },
  { worker: 'observability', key: 'sampling', what: 'trace sampling rules' },
  { worker: 'observability', key: 'collapse_spans', what: 'span collapsing' },
  { worker: 'exec', key: '*', what: 'runs shell commands at boot' },
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
    if (rule.adapter !== undefined) {
      const adapter = block[rule.key];
      if (!isPlainObject(adapter) || adapter['name'] !== rule.adapter) continue;
    }
    warnings.push(`${entryName}: key "${rule.key}" (${rule.what}) is accepted but not implemented`);
  }
  return warnings;
}
