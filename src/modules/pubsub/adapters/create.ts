import type { PubSubAdapter } from './adapter';
import { LocalPubSub } from './local';

/**
 * Adapter names this build implements. `redis` is the cluster's pubsub: every node holds every
 * `subscribe` binding of the cluster (the registry mirror delivers them), so the node a publish
 * arrives at calls each subscriber once, wherever its worker is; no Redis channel is needed, and
 * each subscriber gets each message once, not once per node.
 */
export const SUPPORTED_PUBSUB_ADAPTERS = ['local', 'redis'] as const;

/**
 * The adapter named by the module's `adapter: {name, config?}` block (default `local`); a name
 * this build does not implement throws, listing the supported ones.
 */
export function createPubSubAdapter(adapter: unknown): PubSubAdapter {
  const name = typeof adapter === 'object' && adapter !== null && 'name' in adapter ? adapter.name : 'local';
  if (name === 'local' || name === 'redis') return new LocalPubSub();
  throw new Error(
    `iii-pubsub: adapter '${String(name)}' is not supported by this build; supported adapters: ${SUPPORTED_PUBSUB_ADAPTERS.join(', ')}`,
  );
}
