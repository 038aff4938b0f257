import type { CronLock } from './lock';
import { DEFAULT_LOCK_TTL_MS, MemoryCronLock } from './memory-lock';

/** Adapter names this build implements; `redis` comes with the cluster issue. */
export const SUPPORTED_CRON_ADAPTERS = ['kv'] as const;

/**
 * The lock named by the module's `adapter: {name, config?}` block (default `kv`); a name this
 * build does not implement throws, listing the supported ones.
 */
export function createCronLock(adapter: unknown): CronLock {
  const block = isRecord(adapter) ? adapter : {};
  const name = block['name'] ?? 'kv';
  const options = isRecord(block['config']) ? block['config'] : {};
  if (name === 'kv') {
    const ttlMs = options['lock_ttl_ms'];
    return new MemoryCronLock(typeof ttlMs === 'number' ? ttlMs : DEFAULT_LOCK_TTL_MS);
  }
  throw new Error(`iii-cron: adapter '${String(name)}' is not supported by this build; supported adapters: ${SUPPORTED_CRON_ADAPTERS.join(', ')}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
