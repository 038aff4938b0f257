import type { StreamEventBus } from './event-bus';
import { LocalEventBus } from './local-event-bus';
import { MemoryStreamStorage } from './memory-storage';
import type { StreamStorage } from './storage';

export type { StreamEventBus, StreamEventHandler } from './event-bus';
export type { ItemUpdate, StreamStorage, StreamSummary } from './storage';

/** The `adapter` block of the `iii-stream` config (iii-modules.md §1.5, §9.1). */
export interface StreamAdapterConfig {
  name: string;
  config?: Record<string, unknown> | null;
}

/** A backend: storage and event fan-out, kept apart so a backend may share one and not the other. */
export interface StreamBackend {
  storage: StreamStorage;
  bus: StreamEventBus;
}

/** Adapter names this build implements (`redis` and `bridge` come with the cluster issue). */
export const SUPPORTED_ADAPTERS = ['kv'] as const;

/** `kv` store methods implemented; the original also has a file-backed one. */
const SUPPORTED_STORE_METHODS = ['in_memory'] as const;

/** Builds the backend named by the config; an unknown name or option throws, naming what is supported. */
export function createStreamBackend(adapter: StreamAdapterConfig): StreamBackend {
  if (adapter.name !== 'kv') {
    throw new Error(`iii-stream: adapter '${adapter.name}' is not supported by this build; supported adapters: ${SUPPORTED_ADAPTERS.join(', ')}`);
  }
  const storeMethod = adapter.config?.['store_method'] ?? 'in_memory';
  if (!(SUPPORTED_STORE_METHODS as readonly unknown[]).includes(storeMethod)) {
    throw new Error(
      `iii-stream: kv store_method '${String(storeMethod)}' is not supported by this build; supported store methods: ${SUPPORTED_STORE_METHODS.join(', ')}`,
    );
  }
  return { storage: new MemoryStreamStorage(), bus: new LocalEventBus() };
}
