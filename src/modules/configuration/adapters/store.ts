import type { Json } from '../../../protocol/messages';

/** What a worker registers about a configuration id, besides its value. */
export interface ConfigurationMeta {
  name: string;
  description: string;
  schema: Json;
  metadata?: Json;
}

/** A value changed, appeared or went away outside the engine (an edited file); `undefined` = removed. */
export type OutsideChange = (id: string, value: Json | undefined) => void;

/**
 * Where configuration lives. Values are stored verbatim (placeholders unexpanded). Every method
 * may reject on a storage failure; the module reports it as ADAPTER_ERROR.
 */
export interface ConfigurationStore {
  open(onOutsideChange: OutsideChange): Promise<void>;
  close(): Promise<void>;
  meta(id: string): Promise<ConfigurationMeta | undefined>;
  /** Stores the registration; resolves true when the id had one already. */
  putMeta(id: string, meta: ConfigurationMeta): Promise<boolean>;
  value(id: string): Promise<Json | undefined>;
  /** Stores a value; resolves with the one it replaced. */
  putValue(id: string, value: Json): Promise<Json | undefined>;
  /** Takes in a value that changed outside (already validated) without writing it back. */
  adopt(id: string, value: Json | undefined): void;
  /** Removes an id, value and registration; resolves with what was there, undefined if nothing. */
  remove(id: string): Promise<{ meta?: ConfigurationMeta; value?: Json } | undefined>;
  /** Every id with a registration or a value, with its registration when it has one. */
  entries(): Promise<Array<{ id: string; meta?: ConfigurationMeta }>>;
}
