import type { Json } from '../../../protocol/messages';
import { serializeWithin } from '../errors';
import { applyUpdateOps } from '../update-ops';
import type { StateAdapter, StateUpdateOutcome } from './adapter';

/**
 * State in process memory (`kv` with `store_method: in_memory`). Values are kept as JSON text:
 * every read hands out a fresh copy, so no caller can change stored data by mutating a result.
 * A Map keeps insertion order, and replacing a key keeps its place, as the original's IndexMap.
 */
export class MemoryStateAdapter implements StateAdapter {
  protected readonly scopes = new Map<string, Map<string, string>>();

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  async get(scope: string, key: string): Promise<Json | undefined> {
    return parse(this.scopes.get(scope)?.get(key));
  }

  async set(scope: string, key: string, value: Json, maxValueBytes: number | undefined): Promise<Json | undefined> {
    return this.write(scope, key, serializeWithin(value, maxValueBytes));
  }

  async delete(scope: string, key: string): Promise<Json | undefined> {
    const entries = this.scopes.get(scope);
    const old = entries?.get(key);
    if (entries === undefined || old === undefined) return undefined;
    entries.delete(key);
    if (entries.size === 0) this.scopes.delete(scope);
    this.changed(scope);
    return parse(old);
  }

  async update(scope: string, key: string, ops: Json, maxValueBytes: number | undefined): Promise<StateUpdateOutcome> {
    // Read, apply and write in one synchronous step: nothing else runs in between.
    const old = parse(this.scopes.get(scope)?.get(key));
    const { value, errors } = applyUpdateOps(old, ops);
    this.write(scope, key, serializeWithin(value, maxValueBytes));
    return { old_value: old, new_value: value, errors };
  }

  async list(scope: string): Promise<Json[]> {
    return [...(this.scopes.get(scope)?.values() ?? [])].map((text) => JSON.parse(text) as Json);
  }

  async listGroups(): Promise<string[]> {
    return [...this.scopes.keys()];
  }

  /** Told of every change to a scope (the file adapter marks it dirty). */
  protected changed(_scope: string): void {}

  private write(scope: string, key: string, text: string): Json | undefined {
    let entries = this.scopes.get(scope);
    if (entries === undefined) {
      entries = new Map();
      this.scopes.set(scope, entries);
    }
    const old = entries.get(key);
    entries.set(key, text);
    this.changed(scope);
    return parse(old);
  }
}

function parse(text: string | undefined): Json | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as Json);
}
