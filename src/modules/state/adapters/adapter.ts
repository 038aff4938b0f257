import type { Json } from '../../../protocol/messages';
import type { StateEvent } from '../triggers';
import type { UpdateOpError } from '../update-ops';

/** What `update` did; `old_value` undefined means the key did not exist. */
export interface StateUpdateOutcome {
  old_value: Json | undefined;
  new_value: Json;
  errors: UpdateOpError[];
}

/**
 * Storage of `iii-state`: scopes (groups) of keys holding JSON values. Every method is async so
 * a networked backend (Redis, next issue) implements the same contract. `undefined` means
 * "no such key", which keeps it apart from a stored `null`.
 */
export interface StateAdapter {
  /** Loads persisted data; called once before any other method. */
  open(): Promise<void>;
  /** Persists what is pending and releases timers and handles. */
  close(): Promise<void>;
  get(scope: string, key: string): Promise<Json | undefined>;
  /**
   * Stores `value`; returns the value it replaced. When its JSON text exceeds `maxValueBytes`
   * it throws VALUE_TOO_LARGE and stores nothing.
   */
  set(scope: string, key: string, value: Json, maxValueBytes: number | undefined): Promise<Json | undefined>;
  /** Removes the key; returns the value it held. A scope left empty disappears. */
  delete(scope: string, key: string): Promise<Json | undefined>;
  /**
   * Applies update ops (raw, validated by `applyUpdateOps`) atomically: no other write to the
   * key lands between the read and the write. When the result's JSON text exceeds
   * `maxValueBytes` it throws VALUE_TOO_LARGE and stores nothing.
   */
  update(scope: string, key: string, ops: Json, maxValueBytes: number | undefined): Promise<StateUpdateOutcome>;
  /** The values of a scope in insertion order (a replaced value keeps its place); [] if unknown. */
  list(scope: string): Promise<Json[]>;
  /** The scopes holding at least one key, in any order. */
  listGroups(): Promise<string[]>;
  /**
   * Present when the backend reports its changes itself (the bridge: changes made on the other
   * engine too); the module then fires triggers from these reports instead of its own writes.
   */
  watch?(onEvent: (event: StateEvent) => void): void;
}
