/**
 * The `iii-state` block (iii-modules.md §8.1) as the module uses it. The config loader has
 * validated it and filled in defaults; this only gives it types.
 */
export interface StateConfig {
  adapter: { name: string; options: Record<string, unknown> };
  /** false stops all `state` trigger fan-out. */
  triggersEnabled: boolean;
  /** Largest JSON text a stored value may have, in bytes; undefined = no limit. */
  maxValueBytes: number | undefined;
  /** kv flush interval in milliseconds, unless the adapter's own `save_interval_ms` says otherwise. */
  saveIntervalMs: number;
}

const DEFAULT_SAVE_INTERVAL_MS = 5000;

export function readStateConfig(raw: Record<string, unknown>): StateConfig {
  const adapter = isRecord(raw['adapter']) ? raw['adapter'] : {};
  const maxValueBytes = raw['max_value_bytes'];
  const saveIntervalMs = raw['save_interval_ms'];
  return {
    adapter: {
      name: typeof adapter['name'] === 'string' ? adapter['name'] : 'kv',
      options: isRecord(adapter['config']) ? adapter['config'] : {},
    },
    triggersEnabled: raw['triggers_enabled'] !== false,
    maxValueBytes: typeof maxValueBytes === 'number' ? maxValueBytes : undefined,
    saveIntervalMs: typeof saveIntervalMs === 'number' ? saveIntervalMs : DEFAULT_SAVE_INTERVAL_MS,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
