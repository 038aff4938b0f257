import type { PubSubAdapter } from './adapter';
import { LocalPubSub } from './local';

/** Adapter names this build implements; `redis` comes with the cluster issue. */
export const SUPPORTED_PUBSUB_ADAPTERS = ['local'] as const;

/**
 * The adapter named by the module's `adapter: {name, config?}` block (default `local`); a name
 * this build does not implement throws, listing the supported ones.
 */
export function createPubSubAdapter(adapter: unknown): PubSubAdapter {
  const name = typeof adapter === 'object' && adapter !== null && 'name' in adapter ? adapter.name : 'local';
  if (name === 'local') return new LocalPubSub();
  throw new Error(`iii-pubsub: adapter '${String(name)}' is not supported by this build; supported adapters: ${SUPPORTED_PUBSUB_ADAPTERS.join(', ')}`);
}
