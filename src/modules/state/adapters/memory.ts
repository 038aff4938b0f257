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
    const text = serializeWithin(value, maxValueBytes);
    const old = this.write(scope, key, text);
    await this.persist(scope, key, text);
    return old;
  }

  async delete(scope: string, key: string): Promise<Json | undefined> {
    const entries = this.scopes.get(scope);
    const old = entries?.get(key);
    if (entries === undefined || old === undefined) return undefined;
    entries.delete(key);
    if (entries.size === 0) this.scopes.delete(scope);
    await this.persist(scope, key, undefined);
    return parse(old);
  }

  async update(scope: string, key: string, ops: Json, maxValueBytes: number | undefined): Promise<StateUpdateOutcome> {
    // Read, apply and write in one synchronous step: nothing else runs in between.
    const old = parse(this.scopes.get(scope)?.get(key));
    const { value, errors } = applyUpdateOps(old, ops);
    const text = serializeWithin(value, maxValueBytes);
    this.write(scope, key, text);
    await this.persist(scope, key, text);
    return { old_value: old, new_value: value, errors };
  }

  async list(scope: string): Promise<Json[]> {
    return [...(this.scopes.get(scope)?.values() ?? [])].map((text) => JSON.parse(text) as Json);
  }

  async listGroups(): Promise<string[]> {
    return [...this.scopes.keys()];
  }

  /**
   * Told of every change, after memory holds it (`text` undefined: the key was removed); the
   * call is acknowledged when this settles. The file adapter writes it to its store.
   */
  protected persist(_scope: string, _key: string, _text: string | undefined): Promise<void> | void {}

  /** Puts `text` under the key in memory only; returns the value it replaced. */
  protected write(scope: string, key: string, text: string): Json | undefined {
    let entries = this.scopes.get(scope);
    if (entries === undefined) {
      entries = new Map();
      this.scopes.set(scope, entries);
    }
    const old = entries.get(key);
    entries.set(key, text);
    return parse(old);
  }
}

function parse(text: string | undefined): Json | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as Json);
}
